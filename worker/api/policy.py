"""Who may do what: the one check every handler makes, ``enforce(request, rule, target)``.

The rules are Glance's, by name and default, overridable by the operator's policy files
(:mod:`worker.api.policies`, docs/policy.md). The target is what Glance passes for the same
call: an image's attributes with ``project_id`` = its owner and ``member_id`` = the caller
when the image is shared with them; a metadef namespace's owner and visibility; the caller's
own project for lists and creations.

A refusal answers 403 "You are not authorized to complete RULE action.", except that a
resource the caller may not even see answers 404, exactly as Glance hides it: when the
refused rule is the one that lets them see it (``get_image``, ``get_metadef_namespace``),
or when that rule refuses them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from flows.records import ImageRecord
from worker.api.errors import forbidden, not_found
from worker.api.identity import identity_of
from worker.api.policies.engine import Caller
from worker.api.state import state_of

#: The target of a call about no resource in particular.
NO_TARGET: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Hidden:
    """How a resource answers a caller who may not see it: the rule that lets them see it,
    and the 404 message."""

    rule: str
    message: str


def enforce(
    request: web.Request,
    rule: str,
    target: Mapping[str, Any] = NO_TARGET,
    hidden: Hidden | None = None,
) -> None:
    """Return when policy ``rule`` admits the caller on ``target``; else 403, or 404 when
    ``hidden`` says the caller may not see the resource either."""
    policy, caller = state_of(request).policy, identity_of(request)
    if policy.allows(rule, target, caller):
        return
    if hidden is not None and (
        rule == hidden.rule or not policy.allows(hidden.rule, target, caller)
    ):
        raise not_found(hidden.message)
    raise forbidden(f"You are not authorized to complete {rule} action.")


def allowed(request: web.Request, rule: str, target: Mapping[str, Any] = NO_TARGET) -> bool:
    """Whether ``rule`` admits the caller on ``target`` (a soft check: nothing raised)."""
    return state_of(request).policy.allows(rule, target, identity_of(request))


def enforce_on_image(request: web.Request, rule: str, image: ImageRecord) -> None:
    """:func:`enforce` ``rule`` on ``image``, hidden (404) from who may not ``get_image`` it."""
    target = image_target(image, identity_of(request))
    enforce(request, rule, target, Hidden("get_image", f"No image found with ID {image.id}"))


def own_project(caller: Caller) -> Mapping[str, Any]:
    """The target of lists and creations: the caller's own project."""
    return {"project_id": caller.project_id}


def image_target(image: ImageRecord, caller: Caller) -> dict[str, Any]:
    """What Glance's ``ImageTarget`` shows the rules: the attributes, the extra properties,
    ``project_id`` (the owner) and ``member_id`` (the caller, for a shared image they do
    not own: they found it by being a member)."""
    member = (
        caller.project_id
        if image.visibility == "shared" and image.owner != caller.project_id
        else None
    )
    return {
        **image.properties,
        "id": image.id,
        "image_id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "owner": image.owner,
        "project_id": image.owner,
        "member": member,
        "member_id": member,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "tags": image.tags,
        "created_at": image.created_at,
        "updated_at": image.updated_at,
    }


def enforce_visibility(request: web.Request, visibility: str, target: Mapping[str, Any]) -> None:
    """Making an image public or community needs a rule of its own (Glance's)."""
    if visibility == "public":
        enforce(request, "publicize_image", target)
    elif visibility == "community":
        enforce(request, "communitize_image", target)
