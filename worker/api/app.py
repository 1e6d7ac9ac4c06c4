"""The API application: routes, middlewares (request id, errors, identity), lifecycle."""

from __future__ import annotations

import logging

from aiohttp import web

from flows.requester import RequestContext
from worker.api import (
    actions,
    cache,
    data,
    discovery,
    images,
    imports,
    members,
    metadefs,
    stores,
    tasks,
    usage,
)
from worker.api.errors import Handler, errors_middleware
from worker.api.identity import (
    IDENTITY_KEY,
    from_headers,
    from_keystone,
    unauthenticated,
)
from worker.api.keystone import KeystoneClient
from worker.api.limits import KeystoneLimits, LimitSource, oslo_limit_enforcer
from worker.api.policies.engine import PolicyEngine
from worker.api.policies.files import PolicySources
from worker.api.proxies import require_trusted_peer
from worker.api.quotas import Quotas
from worker.api.request_id import (
    REQUEST_ID_KEY,
    add_request_id_header,
    request_id_middleware,
)
from worker.api.state import STATE_KEY, ApiState, state_of
from worker.cache.setup import node_cache
from worker.config.settings import Settings
from worker.daemon.client import LazyPublisher
from worker.db.engine import create_sessionmaker
from worker.db.metadefs.catalog import MetadefCatalog
from worker.tasks.services import Services
from worker.tasks.submission import SubmissionRules

log = logging.getLogger(__name__)


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller's identity by ``[api] auth`` (see worker.api.identity)."""
    if request.path in discovery.PUBLIC_PATHS:
        return await handler(request)
    state = state_of(request)
    request[IDENTITY_KEY] = await _identify(state, request)
    return await handler(request)


async def _identify(state: ApiState, request: web.Request) -> RequestContext:
    api = state.settings.api
    request_id = request[REQUEST_ID_KEY]
    if api.auth == "none":
        return unauthenticated(api.default_project, request_id)
    if api.auth == "headers":
        require_trusted_peer(request, api.trusted_proxies)
        return from_headers(request, request_id)
    assert state.keystone is not None, "open_state builds the Keystone client for auth = keystone"
    return await from_keystone(request, request_id, state.keystone)


def build_app(state: ApiState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(
        middlewares=[request_id_middleware, errors_middleware, identity_middleware],
        client_max_size=state.settings.api.max_json_bytes,
    )
    app[STATE_KEY] = state
    app.on_response_prepare.append(add_request_id_header)
    modules = (
        discovery,
        images,
        data,
        imports,
        tasks,
        stores,
        metadefs,
        cache,
        members,
        actions,
        usage,
    )
    for module in modules:
        app.add_routes(module.ROUTES)
    return app


def load_policy(settings: Settings) -> PolicyEngine:
    """The policy rules of ``[api] policy_file`` and ``policy_dirs`` (PolicyFileError when a
    file cannot be applied: the API refuses to start rather than run with other rules)."""
    return PolicyEngine(PolicySources.of(settings.api.policy_file, settings.api.policy_dirs))


async def open_state(settings: Settings, policy: PolicyEngine | None = None) -> ApiState:
    """Connect to the database, build the stores and start the node's cache; the broker is
    connected on first use."""
    policy = policy or load_policy(settings)
    services = await Services.open(settings)
    limits = limit_source(settings)
    if isinstance(limits, KeystoneLimits):
        await limits.warm()
    state = ApiState(
        services=services,
        publisher=LazyPublisher(settings.broker),
        rules=SubmissionRules.from_settings(settings),
        policy=policy,
        metadefs=MetadefCatalog(create_sessionmaker(services.records.engine)),
        quotas=Quotas(limits, services.records, settings.api),
        keystone=KeystoneClient(settings.keystone) if settings.api.auth == "keystone" else None,
    )
    records = services.records
    state.cache = node_cache(settings, records.engine, records.images, state.stores, state.registry)
    if state.cache is not None:
        try:
            await state.cache.start()
        except BaseException:
            await close_state(state)
            raise
    return state


def limit_source(settings: Settings) -> LimitSource | None:
    """Keystone's unified limits through oslo.limit when ``[quotas] use_keystone_limits``."""
    quotas = settings.quotas
    if not quotas.use_keystone_limits:
        return None
    return KeystoneLimits(
        quotas.cache_seconds, lambda: oslo_limit_enforcer(quotas, settings.keystone)
    )


async def close_state(state: ApiState) -> None:
    """Close the cache, the broker connection, the Keystone client, the stores and the
    database."""
    try:
        if state.cache is not None:
            await state.cache.close()
        await state.publisher.close()
        if state.keystone is not None:
            await state.keystone.close()
    finally:
        await state.services.close()
