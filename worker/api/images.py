"""``/v2/images``: create, list, show, update and delete image records; tags."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from flows.errors import NotFound, TransientError
from flows.records import ImageRecord
from flows.requester import RequestContext
from flows.states import TaskType
from worker.api.attributes import (
    check_core,
    check_key,
    check_property,
    check_property_count,
    check_tags,
)
from worker.api.bodies import read_json, read_json_object, require_media_type
from worker.api.common import is_uuid, json_response, visible_image
from worker.api.errors import bad_request, forbidden, not_found
from worker.api.identity import identity_of
from worker.api.listing import page_links, parse_image_query
from worker.api.patch import PATCH_TYPES, parse_operations, plan_changes
from worker.api.policy import (
    allowed,
    enforce,
    enforce_on_image,
    enforce_visibility,
    image_target,
    own_project,
)
from worker.api.state import ApiState, state_of
from worker.api.views import image_view
from worker.cache.bus import Action, CacheCommand
from worker.cache.node import NodeCache
from worker.daemon.messages import TaskMessage
from worker.db.catalog import MUTABLE_CORE, ImageChanges, NewImage

log = logging.getLogger(__name__)


async def create_image(request: web.Request) -> web.Response:
    """``POST /v2/images``: record a new ``queued`` image."""
    state, identity = state_of(request), identity_of(request)
    body = await read_json_object(request, state.settings.api.max_json_bytes)
    new = _new_image(body, state, identity)
    _may_create(request, identity, new)
    admission = await state.quotas.for_create(identity.project_id)
    image = await state.catalog.create(new, admission)
    log.info("image %s created by project %s", image.id, identity.project_id)
    base = _base_url(request, state)
    return json_response(
        image_view(image, show_locations=state.shows_locations(identity)),
        status=201,
        headers={
            "Location": f"{base}/v2/images/{image.id}",
            "OpenStack-image-import-methods": ",".join(state.settings.import_.methods),
            "OpenStack-image-store-ids": ",".join(state.settings.stores.backends),
        },
    )


def _new_image(body: dict[str, Any], state: ApiState, identity: RequestContext) -> NewImage:
    fields: dict[str, Any] = {"owner": identity.project_id}
    properties: dict[str, str] = {}
    for key, value in body.items():
        if key == "id":
            if not isinstance(value, str) or not is_uuid(value):
                raise bad_request(f"id {value!r} is not a UUID.")
            fields["image_id"] = value
        elif key == "tags":
            fields["tags"] = check_tags(value, state.settings.api.image_tag_quota)
        elif key in MUTABLE_CORE:
            fields[key] = check_core(key, value, state.settings.api, identity)
        else:
            check_key(key)
            properties[key] = check_property(key, value)
    check_property_count(len(properties), state.settings.api.image_property_quota)
    return NewImage(**fields, properties=properties)


def _may_create(request: web.Request, identity: RequestContext, new: NewImage) -> None:
    """Glance's ``add_image`` on the proposed owner and visibility, then the visibility's."""
    target = {"project_id": new.owner, "owner": new.owner, "visibility": new.visibility}
    if not allowed(request, "add_image", target) and new.owner != identity.project_id:
        raise forbidden(f"You are not permitted to create images owned by '{new.owner}'.")
    enforce(request, "add_image", target)
    enforce_visibility(request, new.visibility, target)


def _base_url(request: web.Request, state: ApiState) -> str:
    configured = state.settings.api.public_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


async def list_images(request: web.Request) -> web.Response:
    """``GET /v2/images``: one page of the images the caller may list."""
    state, identity = state_of(request), identity_of(request)
    enforce(request, "get_images", own_project(identity))
    query = parse_image_query(request.query, state.settings.api)
    try:
        found = await state.catalog.list(query, identity)
    except NotFound as missing:
        raise bad_request(str(missing)) from missing
    full_page = query.limit > 0 and len(found) == query.limit
    images = [i for i in found if allowed(request, "get_image", image_target(i, identity))]
    shows = state.shows_locations(identity)
    body: dict[str, Any] = {"images": [image_view(i, show_locations=shows) for i in images]}
    body.update(page_links(request.query, found[-1].id if full_page else None))
    body["schema"] = "/v2/schemas/images"
    return json_response(body)


async def show_image(request: web.Request) -> web.Response:
    """``GET /v2/images/{image_id}``."""
    state, identity, image = await visible_image(request)
    return json_response(image_view(image, show_locations=state.shows_locations(identity)))


async def update_image(request: web.Request) -> web.Response:
    """``PATCH /v2/images/{image_id}``: apply a JSON patch (Glance's media types)."""
    media = require_media_type(request, PATCH_TYPES)
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "modify_image", image)
    body = await read_json(request, state.settings.api.max_json_bytes, PATCH_TYPES)
    changes = plan_changes(image, parse_operations(body, media), state.settings.api, identity)
    if "visibility" in changes.core:
        enforce_visibility(request, changes.core["visibility"], image_target(image, identity))
    updated = await state.catalog.update(image.id, changes)
    return json_response(image_view(updated, show_locations=state.shows_locations(identity)))


async def delete_image(request: web.Request) -> web.Response:
    """``DELETE /v2/images/{image_id}``: gone at once; the workers remove its data."""
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "delete_image", image)
    deletion = await state.catalog.delete(image.id, identity)
    if deletion.task is not None:
        await publish_delete(state, identity, image, deletion.task.id, deletion.task.type)
    if state.cache is not None:
        await forget_cached(state.cache, image.id)
    log.info("image %s deleted by project %s", image.id, identity.project_id)
    return web.Response(status=204)


async def publish_delete(
    state: ApiState, identity: RequestContext, image: ImageRecord, task_id: str, kind: str
) -> None:
    """Publish a delete task; if the broker is down, the task waits for the sweeper."""
    message = TaskMessage.deletion(task_id, image.id, TaskType(kind), identity.without_token())
    try:
        await state.publisher.publish(message)
    except TransientError as exc:
        log.warning("delete task %s not published (%s); the sweeper will publish it", task_id, exc)


async def forget_cached(cache: NodeCache, image_id: str) -> None:
    """Every node drops its cached copy of a deleted image (a node that cannot be told now
    drops it at its next clean: a deleted image is never served from a cache anyway)."""
    try:
        await cache.command(CacheCommand(Action.IMAGE_DELETED, image_id, sender=cache.name))
    except TransientError as exc:
        log.warning("cached copies of deleted image %s: %s", image_id, exc)


async def add_tag(request: web.Request) -> web.Response:
    """``PUT /v2/images/{image_id}/tags/{tag}``."""
    state, _identity, image = await visible_image(request)
    enforce_on_image(request, "modify_image", image)
    tags = check_tags([*image.tags, request.match_info["tag"]], state.settings.api.image_tag_quota)
    await state.catalog.update(image.id, ImageChanges(tags=tags))
    return web.Response(status=204)


async def delete_tag(request: web.Request) -> web.Response:
    """``DELETE /v2/images/{image_id}/tags/{tag}``."""
    state, _identity, image = await visible_image(request)
    enforce_on_image(request, "modify_image", image)
    tag = request.match_info["tag"]
    if tag not in image.tags:
        raise not_found(f"Tag {tag} not found on image {image.id}.")
    await state.catalog.update(
        image.id, ImageChanges(tags=tuple(t for t in image.tags if t != tag))
    )
    return web.Response(status=204)


ROUTES = [
    web.post("/v2/images", create_image),
    web.get("/v2/images", list_images),
    web.get("/v2/images/{image_id}", show_image),
    web.patch("/v2/images/{image_id}", update_image),
    web.delete("/v2/images/{image_id}", delete_image),
    web.put("/v2/images/{image_id}/tags/{tag}", add_tag),
    web.delete("/v2/images/{image_id}/tags/{tag}", delete_tag),
]
