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
from sqlalchemy.exc import InterfaceError, OperationalError

from flows.errors import (
    ImageStateConflict,
    ImportFailed,
    InvalidRequest,
    LockLost,
    NotFound,
    SafetyRefusal,
    StagingError,
    TransientError,
    UnknownStore,
)
from worker.api.request_id import REQUEST_ID_KEY
from worker.db.catalog import LastLocation, ProtectedImage

log = logging.getLogger(__name__)

#: Failures of the database connection: the service is unavailable, not broken (503).
OUTAGES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)

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


#: Pipeline errors by type, most specific first, and the status Glance answers them with.
_STATUS_BY_ERROR: tuple[tuple[type[ImportFailed], int], ...] = (
    (NotFound, 404),
    (ProtectedImage, 403),
    (LastLocation, 403),
    (UnknownStore, 409),
    (LockLost, 409),
    (ImageStateConflict, 409),
    (SafetyRefusal, 400),
    (InvalidRequest, 400),
    (StagingError, 507),
    (TransientError, 503),
)


def status_of(error: ImportFailed) -> int:
    """The HTTP status of a pipeline error (400 for any other terminal error)."""
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500 if error.transient else 400


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    """Glance's error body: JSON when the client accepts it, else a small HTML page."""
    phrase = HTTPStatus(status).phrase
    if "application/json" in request.headers.get("Accept", ""):
        body = {"message": message, "code": f"{status} {phrase}", "title": phrase}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")
    page = (
        f"<html>\n <head>\n  <title>{status} {phrase}</title>\n </head>\n <body>\n"
        f"  <h1>{status} {phrase}</h1>\n  {html.escape(message)}<br /><br />\n\n\n\n"
        " </body>\n</html>"
    )
    return web.Response(status=status, text=page, content_type="text/html", charset="UTF-8")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error in Glance's shape (see the module docstring)."""
    try:
        return await handler(request)
    except ApiError as error:
        response = error_response(request, error.status, error.message)
        response.headers.update(error.headers)
        return response
    except ImportFailed as error:
        return error_response(request, status_of(error), str(error))
    except OUTAGES as error:
        log.warning("a dependency failed under %s %s: %s", request.method, request.path, error)
        return error_response(
            request,
            503,
            "The image records are unreachable right now; try again shortly.",
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = _routing_message(request, error)
        response = error_response(request, error.status, message)
        if error.status == 405 and "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:
        request_id = request.get(REQUEST_ID_KEY, "")
        log.exception("internal error answering %s %s", request.method, request.path)
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
