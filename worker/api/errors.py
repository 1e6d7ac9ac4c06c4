"""Errors as Glance answers them: a status, a title and a message, in HTML or JSON.

Glance (webob) answers an error with a small HTML page unless the client accepts JSON, when
it sends ``{"message": ..., "code": "404 Not Found", "title": "Not Found"}``;
python-glanceclient reads either, openstacksdk reads the JSON. The middleware turns every
error a handler raises — an :class:`ApiError`, a typed pipeline error, aiohttp's own 404/405
— into that shape, and a bug into a 500 that names the request id, never a traceback.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from flows.errors import (
    ImageStateConflict,
    ImportFailed,
    InvalidRequest,
    LastLocation,
    LockLost,
    NotFound,
    OverLimit,
    ProtectedImage,
    RecordsUnavailable,
    SafetyRefusal,
    StagingError,
    TransientError,
    UnknownStore,
)
from worker.api.request_id import REQUEST_ID_KEY

log = logging.getLogger(__name__)

#: A connection that failed under a handler outside the records (which raise
#: :class:`RecordsUnavailable`): the service is unavailable, not broken (503).
OUTAGES: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
#: What a caller is told when the records do not answer (the driver's detail goes to the log).
RECORDS_UNAVAILABLE = "The image records are unreachable right now; try again shortly."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An HTTP error with a message for the user."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    """400."""
    return ApiError(400, message)


def forbidden(message: str) -> ApiError:
    """403."""
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    """404."""
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    """409."""
    return ApiError(409, message)


#: Pipeline errors by type, most specific first, and the status Glance answers them with:
#: every transient error is 503 (try again later), a staging area that cannot take the data
#: 507, a limit 413, any other terminal error 400.
_STATUS_BY_ERROR: tuple[tuple[type[ImportFailed], int], ...] = (
    (TransientError, 503),
    (NotFound, 404),
    (ProtectedImage, 403),
    (LastLocation, 403),
    (UnknownStore, 409),
    (OverLimit, 413),
    (LockLost, 409),
    (ImageStateConflict, 409),
    (SafetyRefusal, 400),
    (InvalidRequest, 400),
    (StagingError, 507),
)


def status_of(error: ImportFailed) -> int:
    """The HTTP status of a pipeline error (400 for any other terminal error)."""
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 400


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    """Glance's error body: JSON when the client accepts it, else a small HTML page.

    The page escapes only ``&``, ``<`` and ``>``: python-glanceclient prints the page's text
    with the tags stripped and the entities left as they are, so an escaped quote would
    reach the user as ``&#x27;``.
    """
    phrase = HTTPStatus(status).phrase
    if "application/json" in request.headers.get("Accept", ""):
        body = {"message": message, "code": f"{status} {phrase}", "title": phrase}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")
    text = html.escape(message, quote=False)
    page = (
        f"<html>\n <head>\n  <title>{status} {phrase}</title>\n </head>\n <body>\n"
        f"  <h1>{status} {phrase}</h1>\n  {text}<br /><br />\n\n\n\n"
        " </body>\n</html>"
    )
    return web.Response(status=status, text=page, content_type="text/html", charset="UTF-8")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error in Glance's shape (see the module docstring)."""
    try:
        return await handler(request)
    except Exception as error:
        if request.writer is not None and request.writer.output_size > 0:
            # The status line is out (a download whose store stopped answering): no other
            # answer can follow. aiohttp closes the connection; the client sees the body cut.
            log.warning("%s %s stopped mid-answer: %s", request.method, request.path, error)
            raise
        response = _error_answer(request, error)
        if response is None:
            raise
        return response


def _error_answer(request: web.Request, error: Exception) -> web.StreamResponse | None:
    """The answer to ``error`` (None: let aiohttp handle it, e.g. a redirect)."""
    if isinstance(error, ApiError):
        response = error_response(request, error.status, error.message)
        response.headers.update(error.headers)
        return response
    if isinstance(error, RecordsUnavailable):
        log.warning("the records failed under %s %s: %s", request.method, request.path, error)
        return error_response(request, 503, RECORDS_UNAVAILABLE)
    if isinstance(error, ImportFailed):
        status = status_of(error)
        if status == 503:
            log.warning("%s %s: %s", request.method, request.path, error)
        return error_response(request, status, str(error))
    if isinstance(error, OUTAGES):
        log.warning("a dependency failed under %s %s: %s", request.method, request.path, error)
        return error_response(request, 503, RECORDS_UNAVAILABLE)
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            return None
        response = error_response(request, error.status, _routing_message(request, error))
        if error.status == 405 and "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    request_id = request.get(REQUEST_ID_KEY, "")
    log.error("internal error answering %s %s", request.method, request.path, exc_info=error)
    return error_response(
        request,
        500,
        f"The server could not answer this request; look for {request_id} in its log.",
    )


def _routing_message(request: web.Request, error: web.HTTPException) -> str:
    if error.status == 404:
        return "The resource could not be found."
    if error.status == 405:
        return f"The method {request.method} is not allowed for this resource."
    if error.status == 413:
        return "The request body is too large."
    return error.text or HTTPStatus(error.status).phrase
