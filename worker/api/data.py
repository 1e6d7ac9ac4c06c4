"""Image data through the API: staging an upload (glance-direct), a classic upload, downloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web

from flows.errors import ImageStateConflict
from flows.records import ImageRecord, Location
from flows.request import GLANCE_DIRECT, ImportRequest
from flows.requester import RequestContext
from flows.states import ImageStatus, TaskStatus, is_terminal
from worker.api.bodies import require_media_type
from worker.api.common import visible_image
from worker.api.errors import ApiError, conflict, forbidden
from worker.api.imports import STORE_HEADER
from worker.api.policy import enforce_on_image
from worker.api.ranges import ByteRange, requested_range
from worker.api.state import ApiState
from worker.cache.bodies import Chunk, ImageBody, StoreBody, readable_location
from worker.cache.errors import CorruptBlock
from worker.daemon.client import enqueue_import
from worker.tasks.staging import stage_stream

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
#: Seconds between two looks at whether a waiting download's client is still there.
GONE_CHECK_SECONDS = 1.0
#: The status logged for a download whose client left before it began (nginx's 499).
CLIENT_GONE = 499


async def stage(request: web.Request) -> web.Response:
    """``PUT /v2/images/{image_id}/stage``: stream the body into the shared staging area."""
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "modify_image", image)
    _require_method(state, GLANCE_DIRECT)
    require_media_type(request, (OCTET_STREAM,))
    size = await _stage_body(request, state, identity, image)
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
    await _stage_body(request, state, identity, image)
    import_request = ImportRequest(method=GLANCE_DIRECT, stores=_header_stores(request))
    task_id = await enqueue_import(
        state.records,
        state.rules,
        state.publisher,
        image_id=image.id,
        request=import_request,
        requester=state.import_requester(identity, image),
        admission=await state.quotas.for_import(identity.project_id, import_request, state.rules),
        without_worker=state.metrics.task_without_worker,
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


async def _stage_body(
    request: web.Request, state: ApiState, identity: RequestContext, image: ImageRecord
) -> int:
    cap = state.settings.safety.image_size_cap
    declared = request.content_length
    if declared is not None and declared > cap:
        raise ApiError(
            413, f"The upload of {declared} bytes is larger than the image size cap of {cap} bytes."
        )
    # Refused before a byte moves when it cannot fit now; decided once the bytes are here.
    await state.quotas.check_stage(identity.project_id, image, declared or 0)
    admission = await state.quotas.for_stage(identity.project_id)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(1024 * 1024):
            yield chunk

    try:
        return await stage_stream(
            state.records.images, state.settings.staging.dir, image.id, body(), cap, admission
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
    """``GET /v2/images/{image_id}/file``: the data (or a ``Range`` of it), from this node's
    cache when it holds the image (docs/cache.md), else from a store that has it."""
    state, identity, image = await visible_image(request)
    enforce_on_image(request, "download_image", image)
    if image.status == ImageStatus.DEACTIVATED and not identity.is_admin:
        raise forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
        )
    location = readable_location(image, state.stores)
    if location is None:
        return web.Response(status=204)
    wanted = requested_range(request, image.size) if image.size is not None else None
    if request.method == "HEAD" and image.size is not None:
        head = web.StreamResponse(status=206 if wanted else 200)
        head.headers.update(_headers(image, wanted, image.size))
        return head
    body = await _open_body(state, image, location)
    try:
        if image.size is None:
            wanted = requested_range(request, body.size)
        start, end = (wanted.start, wanted.end) if wanted is not None else (0, body.size)
        chunks = _while_connected(request, body.chunks(start, end))
        try:
            # The first bytes before the status line: a store or fill that fails at once is
            # a 503, and a cached first block found rotten is read from the store instead.
            first = await anext(chunks, None)
        except CorruptBlock:
            await body.close()
            body = await _open_body(state, image, location)
            chunks = _while_connected(request, body.chunks(start, end))
            first = await anext(chunks, None)
        return await _send(request, state, identity, image, body, wanted, first, chunks)
    except ConnectionError:
        log.info("download of image %s: the client went away before the first byte", image.id)
        return web.Response(status=CLIENT_GONE)
    finally:
        await body.close()


async def _open_body(state: ApiState, image: ImageRecord, location: Location) -> ImageBody:
    store = state.stores[location.store]
    if state.cache is not None:
        return await state.cache.open(image, store, location)
    return StoreBody(await store.open(location.url))


def _headers(image: ImageRecord, wanted: ByteRange | None, size: int) -> dict[str, str]:
    headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(size)}
    if wanted is not None:
        headers["Content-Length"] = str(wanted.length)
        headers["Content-Range"] = wanted.content_range()
    elif image.checksum:
        headers["Content-MD5"] = image.checksum
    return headers


async def _send(
    request: web.Request,
    state: ApiState,
    identity: RequestContext,
    image: ImageRecord,
    body: ImageBody,
    wanted: ByteRange | None,
    first: Chunk | None,
    chunks: AsyncGenerator[Chunk, None],
) -> web.StreamResponse:
    """Stream the bytes; a failure once the answer began cuts the connection (never a
    complete answer with missing or wrong bytes)."""
    response = web.StreamResponse(
        status=206 if wanted is not None else 200, headers=_headers(image, wanted, body.size)
    )
    sent = 0
    try:
        await response.prepare(request)
        if first is not None:
            await response.write(first)
            sent += len(first)
        async for chunk in chunks:
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
    except ConnectionError:
        log.info("download of image %s: the client went away after %d bytes", image.id, sent)
    except Exception as exc:
        log.warning("download of image %s cut off after %d bytes: %s", image.id, sent, exc)
        if request.transport is not None:
            request.transport.abort()
    finally:
        await chunks.aclose()
        if state.cache is not None:
            state.cache.metrics.served(body.source, sent)
        await _announce_send(state, identity, image, sent)
    return response


async def _while_connected(
    request: web.Request, chunks: AsyncGenerator[Chunk, None]
) -> AsyncGenerator[Chunk, None]:
    """``chunks``, stopped with :class:`ConnectionResetError` once the client has gone.

    A client that leaves while a download waits (for a fill to reach its bytes) is noticed
    within :data:`GONE_CHECK_SECONDS`, not when the next write fails: the fill it alone
    followed stops at once instead of reading the rest of the image for nobody.
    """
    try:
        while True:
            step = asyncio.ensure_future(anext(chunks, None))
            try:
                while not step.done():
                    await asyncio.wait({step}, timeout=GONE_CHECK_SECONDS)
                    if not step.done() and _client_gone(request):
                        raise ConnectionResetError("the client closed the connection")
            finally:
                if not step.done():
                    step.cancel()
                    await asyncio.wait({step})
            chunk = step.result()
            if chunk is None:
                return
            yield chunk
    finally:
        await chunks.aclose()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _announce_send(
    state: ApiState, identity: RequestContext, image: ImageRecord, sent: int
) -> None:
    """``image.send`` once the download ended (a failure to record it is only logged)."""
    try:
        await state.catalog.announce_send(image, sent, identity)
    except Exception:
        log.warning("image.send of image %s not recorded", image.id, exc_info=True)


ROUTES = [
    web.put("/v2/images/{image_id}/stage", stage),
    web.put("/v2/images/{image_id}/file", upload),
    web.get("/v2/images/{image_id}/file", download),
]
