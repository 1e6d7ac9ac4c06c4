"""Request ids: every request gets one, every response and log line carries it.

A well-formed id offered by the caller (``x-openstack-request-id: req-<uuid>``) is kept, so a
request can be followed from the client through the API to the task it creates.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from worker.daemon.logs import log_fields

log = logging.getLogger(__name__)

REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
REQUEST_ID_HEADER = "x-openstack-request-id"
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give every request an id (the caller's, when well formed), in logs and the response."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _REQUEST_ID.match(offered) else f"req-{uuid.uuid4()}"
    request[REQUEST_ID_KEY] = request_id
    with log_fields(request_id=request_id):
        response = await handler(request)
        log.info(
            "%s %s %d",
            request.method,
            request.path_qs,
            response.status,
            extra={"remote": request.remote},
        )
        return response


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the header on every response, streamed ones included."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
