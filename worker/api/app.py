"""The API application: routes, middlewares (request id, errors, identity), lifecycle."""

from __future__ import annotations

import logging
import re
import uuid

from aiohttp import web

from worker.api import data, discovery, images, imports, stores, tasks
from worker.api.broker import LazyPublisher
from worker.api.errors import Handler, errors_middleware
from worker.api.identity import IDENTITY_KEY, Identity, from_headers, unauthenticated
from worker.api.state import STATE_KEY, ApiState, state_of
from worker.daemon.logs import log_fields
from worker.db.catalog import SqlCatalog
from worker.db.engine import create_sessionmaker
from worker.services import Records, build_stores
from worker.settings import Settings
from worker.submission import SubmissionRules

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-openstack-request-id"
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (the caller's, when well formed), in logs and the response."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _REQUEST_ID.match(offered) else f"req-{uuid.uuid4()}"
    request["request_id"] = request_id
    with log_fields(request_id=request_id):
        response = await handler(request)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        log.info(
            "%s %s %d",
            request.method,
            request.path_qs,
            response.status,
            extra={"remote": request.remote},
        )
        return response


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller's :class:`Identity` by ``[api] auth`` (see worker.api.identity)."""
    if request.path in discovery.PUBLIC_PATHS:
        return await handler(request)
    state = state_of(request)
    request[IDENTITY_KEY] = await _identify(state, request)
    return await handler(request)


async def _identify(state: ApiState, request: web.Request) -> Identity:
    api = state.settings.api
    request_id = str(request["request_id"])
    if api.auth == "none":
        return unauthenticated(api.default_project, request_id)
    if api.auth == "headers":
        return from_headers(request, request_id)
    raise NotImplementedError("keystone authentication is configured but not available")


def build_app(state: ApiState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(
        middlewares=[request_id_middleware, errors_middleware, identity_middleware],
        client_max_size=state.settings.api.max_json_bytes,
    )
    app[STATE_KEY] = state
    for module in (discovery, images, data, imports, tasks, stores):
        app.add_routes(module.ROUTES)
    return app


async def open_state(settings: Settings) -> ApiState:
    """Connect to the database; the broker is connected on first use."""
    records = await Records.open(settings.database, lease_seconds=settings.worker.lease_seconds)
    return ApiState(
        settings=settings,
        records=records,
        catalog=SqlCatalog(create_sessionmaker(records.engine)),
        publisher=LazyPublisher(settings.broker),
        stores=build_stores(settings),
        rules=SubmissionRules.from_settings(settings),
    )


async def close_state(state: ApiState) -> None:
    """Close the broker connection, the stores and the database."""
    try:
        await state.publisher.close()
        for store in state.stores.values():
            await store.close()
    finally:
        await state.records.close()
