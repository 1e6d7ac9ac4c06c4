"""Image data through the API: staging an upload (glance-direct), a classic upload, downloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

from aiohttp import web

from flows.errors import ImageStateConflict, NotFound
from flows.records import ImageRecord, Location
from flows.request import GLANCE_DIRECT, ImportRequest
from flows.requester import RequestContext
from flows.sparse import Segment
from flows.states import ImageStatus, LocationStatus, TaskStatus, is_terminal
from worker.api.bodies import require_media_type
from worker.api.common import visible_image
from worker.api.errors import ApiError, conflict, forbidden
from worker.api.imports import STORE_HEADER
from worker.api.policy import enforce_on_image
from worker.api.state import ApiState
from worker.daemon.client import enqueue_import
from worker.tasks.staging import stage_stream

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
#: Bytes handed to the socket per write when downloading.
SEND_SIZE = 1024 * 1024
_ZEROS = bytes(SEND_SIZE)


async def stage(request: web.Request) -> web.Response:
    """``PUT /v2/images/{image_id}/stage``: stream the body into the shared staging area."""
    state, _identity, image = await visible_image(request)
    enforce_on_image(request, "modify_image", image)
    _require_method(state, GLANCE_DIRECT)
    require_media_type(request, (OCTET_STREAM,))
    size = await _stage_body(request, state, image)
    log.info("staged %d bytes for image %s", size, image.id)
    return web.Response(status=204)


async def upload(request: web.Request) -> web.Response:
    """``PUT /v2/images/{image_id}/file``: Glance's classic upload, done as an import.

    The body is staged, a glance-direct import into the default store (or the one named by
    ``X-Image-Meta-Store``) is enqueued, and the answer waits for it, as Glance's upload
    answers once the data is stored — up to ``[api] upload_wait_seconds``, after which it
    answers 204 anyway (the data is safe; the image goes active when its task ends).
    """
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "upload_image", image)
    require_media_type(request, (OCTET_STREAM,))
    await _stage_body(request, state, image)
    task_id = await enqueue_import(
        state.records,
        state.rules,
        state.publisher,
        image_id=image.id,
        request=ImportRequest(method=GLANCE_DIRECT, stores=_header_stores(request)),
        requester=state.import_requester(identity, image),
    )
    try:
        async with asyncio.timeout(state.settings.api.upload_wait_seconds):
            status = await _wait_for_task(state, task_id)
    except TimeoutError:
        # The data is safely staged and its import enqueued: the image goes active when a
        # worker is done; the task shows how far it got.
        log.warning("upload of image %s: import task %s still running", image.id, task_id)
        return web.Response(status=204)
    if status != TaskStatus.SUCCESS:
        failed = await state.records.tasks.get(task_id)
        raise ApiError(400, f"The uploaded data could not be imported: {failed.message}")
    return web.Response(status=204)


def _header_stores(request: web.Request) -> tuple[str, ...]:
    """The store an upload names in ``X-Image-Meta-Store`` (none: the default store)."""
    store = request.headers.get(STORE_HEADER)
    return (store,) if store else ()


async def _stage_body(request: web.Request, state: ApiState, image: ImageRecord) -> int:
    cap = state.settings.safety.image_size_cap
    declared = request.content_length
    if declared is not None and declared > cap:
        raise ApiError(
            413, f"The upload of {declared} bytes is larger than the image size cap of {cap} bytes."
        )

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(1024 * 1024):
            yield chunk

    try:
        return await stage_stream(
            state.records.images, state.settings.staging.dir, image.id, body(), cap
        )
    except ImageStateConflict as exc:
        raise conflict(str(exc)) from exc


async def _wait_for_task(state: ApiState, task_id: str) -> str:
    while True:
        task = await state.records.tasks.get(task_id)
        if is_terminal(task.status):
            return task.status
        await asyncio.sleep(0.5)


def _require_method(state: ApiState, method: str) -> None:
    if method not in state.settings.import_.methods:
        raise ApiError(404, f"The import method {method} is not enabled on this cloud.")


async def download(request: web.Request) -> web.StreamResponse:
    """``GET /v2/images/{image_id}/file``: stream the data from a store that has it."""
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "download_image", image)
    if image.status == ImageStatus.DEACTIVATED:
        raise forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
        )
    location = _readable_location(state, image)
    if location is None:
        return web.Response(status=204)
    reader = await state.stores[location.store].open(location.url)
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": OCTET_STREAM, "Content-Length": str(reader.size)},
    )
    if image.checksum:
        response.headers["Content-MD5"] = image.checksum
    await response.prepare(request)
    sent = 0
    try:
        segments = reader.segments()
        while (segment := await asyncio.to_thread(next, segments, None)) is not None:
            for piece in _pieces(segment):
                await response.write(piece)
                sent += len(piece)
        await response.write_eof()
    finally:
        await _announce_send(state, identity, image, sent)
    return response


async def _announce_send(
    state: ApiState, identity: RequestContext, image: ImageRecord, sent: int
) -> None:
    """``image.send`` once the download ended (a failure to record it is only logged)."""
    try:
        await state.catalog.announce_send(image, sent, identity)
    except Exception:
        log.warning("image.send of image %s not recorded", image.id, exc_info=True)


def _readable_location(state: ApiState, image: ImageRecord) -> Location | None:
    """The first active location in a configured store (None when the image has no data)."""
    if image.status != ImageStatus.ACTIVE:
        return None
    for location in image.locations:
        if location.status == LocationStatus.ACTIVE and location.store in state.stores:
            return location
    if image.locations:
        raise NotFound(f"Image {image.id}'s data is in no store this API can read.")
    return None


def _pieces(segment: Segment) -> Iterator[bytes | memoryview]:
    if segment.data is not None:
        yield segment.data
        return
    left = segment.length
    while left > 0:
        step = min(left, SEND_SIZE)
        yield memoryview(_ZEROS)[:step]
        left -= step


ROUTES = [
    web.put("/v2/images/{image_id}/stage", stage),
    web.put("/v2/images/{image_id}/file", upload),
    web.get("/v2/images/{image_id}/file", download),
]
