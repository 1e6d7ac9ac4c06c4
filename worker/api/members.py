"""``/v2/images/{image_id}/members``: sharing an image with other projects, as Glance does.

Only a ``shared`` image has members. Who may do what is Glance's policy (``add_member``,
``get_member(s)``, ``modify_member``, ``delete_member``): by default the owner's members add
and remove, the member project accepts or rejects, both read. Answers and messages are
Glance's (``glance/api/v2/image_members.py``): creating answers 200, a member the caller
may not see is a 404, a duplicate 409, past ``[api] image_member_quota`` 413.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from flows.records import ImageRecord
from flows.states import MemberStatus
from worker.api.bodies import read_json
from worker.api.common import json_response, visible_image
from worker.api.errors import bad_request, forbidden, not_found
from worker.api.identity import identity_of
from worker.api.policy import allowed, image_target
from worker.api.state import state_of
from worker.api.views import image_timestamp
from worker.db.members import MemberRecord

#: Glance's words when an image that is not shared is asked about its members.
ONLY_SHARED = "Only shared images have members."


def member_view(member: MemberRecord) -> dict[str, Any]:
    """A member as Glance's API shows it."""
    return {
        "member_id": member.member_id,
        "image_id": member.image_id,
        "status": member.status,
        "created_at": image_timestamp(member.created_at),
        "updated_at": image_timestamp(member.updated_at),
        "schema": "/v2/schemas/member",
    }


def _may(request: web.Request, rule: str, image: ImageRecord) -> bool:
    return allowed(request, rule, image_target(image, identity_of(request)))


async def create_member(request: web.Request) -> web.Response:
    """``POST .../members`` ``{"member": PROJECT}``: share the image (``pending``)."""
    state, _identity, image = await visible_image(request)
    body = await read_json(request, state.settings.api.max_json_bytes)
    member_id = _member_of(body)
    if image.visibility != "shared" or not _may(request, "add_member", image):
        raise forbidden(f"Not allowed to create members for image {image.id}.")
    limit = state.settings.api.image_member_quota
    member = await state.records.members.add(image.id, member_id, limit)
    return json_response(member_view(member))


async def list_members(request: web.Request) -> web.Response:
    """``GET .../members``: every member for the owner, the caller's own for a member."""
    state, identity, image = await visible_image(request)
    refusal = f"Not allowed to list members for image {image.id}: "
    if image.visibility != "shared":
        raise forbidden(refusal + ONLY_SHARED)
    if not _may(request, "get_members", image):
        raise forbidden(refusal + "You are not authorized to complete get_members action.")
    found = await state.records.members.list(image.id, identity)
    visible = found if _may(request, "get_member", image) else []
    return json_response(
        {"members": [member_view(m) for m in visible], "schema": "/v2/schemas/members"}
    )


async def show_member(request: web.Request) -> web.Response:
    """``GET .../members/{member_id}`` (every refusal is a 404, as Glance hides it)."""
    _state, _identity, image = await visible_image(request)
    if image.visibility != "shared":
        raise not_found(ONLY_SHARED)
    return json_response(member_view(await _lookup(request, image)))


async def update_member(request: web.Request) -> web.Response:
    """``PUT .../members/{member_id}`` ``{"status": ...}``: the member accepts or rejects."""
    state, identity, image = await visible_image(request)
    status = _status_of(await read_json(request, state.settings.api.max_json_bytes))
    member = await _to_change(request, image, "update", "modify_member")
    if status not in tuple(MemberStatus):
        raise bad_request('Incorrect request: Status must be "pending", "accepted" or "rejected".')
    changed = await state.records.members.set_status(
        image.id, member.member_id, MemberStatus(status), identity
    )
    return json_response(member_view(changed))


async def delete_member(request: web.Request) -> web.Response:
    """``DELETE .../members/{member_id}``: stop sharing with that project."""
    state, identity, image = await visible_image(request)
    member = await _to_change(request, image, "delete", "delete_member")
    await state.records.members.remove(image.id, member.member_id, identity)
    return web.Response(status=204)


async def _to_change(
    request: web.Request, image: ImageRecord, verb: str, rule: str
) -> MemberRecord:
    """The member of the path, if the caller may ``rule`` it; 403 in Glance's words."""
    refusal = f"Not allowed to {verb} members for image {image.id}."
    if image.visibility != "shared":
        raise forbidden(refusal)
    member = await _lookup(request, image, hidden=False)
    if not _may(request, rule, image):
        raise forbidden(refusal)
    return member


async def _lookup(request: web.Request, image: ImageRecord, hidden: bool = True) -> MemberRecord:
    """The member of the path, if the caller may see it (``get_member``): 404 when not
    found; when refused, 404 (``hidden``, a show) or 403 (a change), as Glance answers."""
    member_id = request.match_info["member_id"]
    if not _may(request, "get_member", image):
        message = f"You are not authorized to lookup the members of the image {image.id}."
        raise not_found(message) if hidden else forbidden(message)
    return await state_of(request).records.members.get(image.id, member_id, identity_of(request))


def _member_of(body: Any) -> str:
    if not isinstance(body, dict):
        raise bad_request('Expected a member in the form: {"member": "image_id"}')
    if "member" not in body:
        raise bad_request("Member to be added not specified")
    member = body["member"]
    if not member:
        raise bad_request("Member can't be empty")
    if not isinstance(member, str) or len(member) > 255:
        raise bad_request("Member must be a project id of at most 255 characters.")
    return member


def _status_of(body: Any) -> str:
    if not isinstance(body, dict):
        raise bad_request('Expected a status in the form: {"status": "status"}')
    if "status" not in body:
        raise bad_request("Status not specified")
    return str(body["status"])


ROUTES = [
    web.post("/v2/images/{image_id}/members", create_member),
    web.get("/v2/images/{image_id}/members", list_members),
    web.get("/v2/images/{image_id}/members/{member_id}", show_member),
    web.put("/v2/images/{image_id}/members/{member_id}", update_member),
    web.delete("/v2/images/{image_id}/members/{member_id}", delete_member),
]
