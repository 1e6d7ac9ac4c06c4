"""Glance's cache API (Image API 2.14, and 2.18's nodes, clean and prune): ``/v2/cache``.

Statuses and bodies as Glance answers them. ``GET /v2/cache``, clean and prune answer for the
node that serves the request, as in Glance; queueing and deleting reach every node (through
the broker), so an operator need not know each node's URL; ``GET /v2/cache/nodes/{id}``
lists the nodes that hold an image. With ``[cache] dir`` unset every path answers 404, as
Glance does without ``image_cache_dir``.
"""

from __future__ import annotations

from enum import StrEnum

from aiohttp import web

from flows.errors import NotFound
from flows.records import ImageRecord
from flows.requester import RequestContext
from flows.states import ImageStatus
from worker.api.common import json_response, path_image_id
from worker.api.errors import bad_request, not_found
from worker.api.identity import identity_of
from worker.api.policy import NO_TARGET, enforce, image_target
from worker.api.state import ApiState, state_of
from worker.cache.bus import Action, CacheCommand, ClearTarget
from worker.cache.node import NodeCache

CACHE_OFF = "Caching via API is not supported at this site."
CLEAR_TARGET_HEADER = "x-image-cache-clear-target"


class CacheRule(StrEnum):
    """Glance's policy rules of the cache API (worker.api.policies.cache: admin-only by
    default, overridable by the operator's policy files)."""

    CACHE_IMAGE = "cache_image"
    CACHE_LIST = "cache_list"
    CACHE_DELETE = "cache_delete"
    CACHE_CLEAN = "cache_clean"
    CACHE_PRUNE = "cache_prune"
    LIST_CACHED_NODES = "list_cached_nodes"


def authorize(request: web.Request, rule: CacheRule, image: ImageRecord | None = None) -> None:
    """Whether the caller may: Glance's rule, on the image when the request names one."""
    target = NO_TARGET if image is None else image_target(image, identity_of(request))
    enforce(request, rule, target)


def _cache(state: ApiState) -> NodeCache:
    if state.cache is None:
        raise not_found(CACHE_OFF)
    return state.cache


async def _image(state: ApiState, identity: RequestContext, image_id: str) -> ImageRecord:
    try:
        return await state.catalog.find(image_id, identity)
    except NotFound:
        raise not_found(f"Image {image_id} not found.") from None


async def cache_state(request: web.Request) -> web.Response:
    """``GET /v2/cache``: this node's cached and queued images."""
    state = state_of(request)
    authorize(request, CacheRule.CACHE_LIST)
    listing = await _cache(state).listing()
    cached = [
        {
            "image_id": row.image_id,
            "hits": row.hits,
            "last_accessed": row.last_accessed,
            "last_modified": row.last_modified,
            "size": row.size,
        }
        for row in listing.cached
    ]
    return json_response({"cached_images": cached, "queued_images": listing.queued})


async def queue_image(request: web.Request) -> web.Response:
    """``PUT /v2/cache/{image_id}``: every node fetches the image, at once."""
    state, identity = state_of(request), identity_of(request)
    image = await _image(state, identity, path_image_id(request))
    authorize(request, CacheRule.CACHE_IMAGE, image)
    cache = _cache(state)
    if image.status != ImageStatus.ACTIVE:
        raise bad_request("Only images with status active can be targeted for queueing")
    await cache.command(CacheCommand(Action.QUEUE, image.id, sender=cache.name))
    return web.Response(status=202)


async def delete_entry(request: web.Request) -> web.Response:
    """``DELETE /v2/cache/{image_id}``: the image leaves every node's cache and queue."""
    state, identity = state_of(request), identity_of(request)
    image_id = path_image_id(request)
    try:
        image: ImageRecord | None = await state.catalog.find(image_id, identity)
    except NotFound:
        image = None
    authorize(request, CacheRule.CACHE_DELETE, image)
    cache = _cache(state)
    if image is None and not cache.holds_or_queues(await cache.listing(), image_id):
        raise not_found(f"Image {image_id} not found.")
    await cache.command(CacheCommand(Action.DELETE, image_id, ClearTarget.BOTH, sender=cache.name))
    return web.Response(status=204)


async def clear(request: web.Request) -> web.Response:
    """``DELETE /v2/cache``: empty the cache, the queue, or both, on every node."""
    state = state_of(request)
    authorize(request, CacheRule.CACHE_DELETE)
    cache = _cache(state)
    target = request.headers.get(CLEAR_TARGET_HEADER, "").strip().lower()
    if target not in ("", ClearTarget.CACHE, ClearTarget.QUEUE):
        raise bad_request(
            f"If provided '{CLEAR_TARGET_HEADER}' must be 'cache', 'queue' or empty string."
        )
    chosen = ClearTarget(target) if target else ClearTarget.BOTH
    await cache.command(CacheCommand(Action.CLEAR, target=chosen, sender=cache.name))
    return web.Response(status=204)


async def cached_nodes(request: web.Request) -> web.Response:
    """``GET /v2/cache/nodes/{image_id}``: the URLs of the nodes holding the image."""
    state, identity = state_of(request), identity_of(request)
    authorize(request, CacheRule.LIST_CACHED_NODES)
    cache = _cache(state)
    image = await _image(state, identity, path_image_id(request))
    return json_response(await cache.records.holders(image.id))


async def clean(request: web.Request) -> web.Response:
    """``POST /v2/cache/clean``: clean this node now."""
    state = state_of(request)
    authorize(request, CacheRule.CACHE_CLEAN)
    await _cache(state).clean()
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    """``POST /v2/cache/prune``: prune this node now."""
    state = state_of(request)
    authorize(request, CacheRule.CACHE_PRUNE)
    pruned = await _cache(state).prune()
    return json_response({"total_files_pruned": pruned.files, "total_bytes_pruned": pruned.bytes})


ROUTES = [
    web.get("/v2/cache", cache_state, allow_head=False),
    web.delete("/v2/cache", clear),
    web.post("/v2/cache/clean", clean),
    web.post("/v2/cache/prune", prune),
    web.get("/v2/cache/nodes/{image_id}", cached_nodes, allow_head=False),
    web.put("/v2/cache/{image_id}", queue_image),
    web.delete("/v2/cache/{image_id}", delete_entry),
]
