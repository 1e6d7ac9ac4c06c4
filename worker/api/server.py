"""``imgworker api``: serve the application until SIGTERM/SIGINT, then close cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

import aio_pika
from aiohttp import web

from worker.api.app import build_app, close_state, load_policy, open_state
from worker.api.exposure import exposure_of
from worker.api.keystone import KeystoneUnavailable
from worker.api.metrics_site import start_metrics
from worker.api.policies.files import PolicyFileError
from worker.api.policies.watcher import watching
from worker.api.state import ApiState
from worker.cache.errors import CacheDirectoryUnusable
from worker.config.settings import Settings
from worker.config.source import CANNOT_LISTEN, CONFIGURATION_REFUSED
from worker.daemon.listening import CannotListen, listen
from worker.daemon.startup import DependencyRefused, broker, database, look_once, reach
from worker.notifications.relay import notification_relay, process_relay_id

log = logging.getLogger(__name__)

#: Seconds requests in flight get to finish after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 30.0


async def serve(settings: Settings) -> None:
    """Listen on ``[api] listen`` until a signal asks to stop.

    The database is waited for with backoff (one log line per attempt) when it is not up
    yet; the broker is looked at once — a refused login or virtual host stops the start
    (DependencyRefused) — and connected on first use, so it may come later still. The policy files
    are read first: a file that cannot be applied stops the start (PolicyFileError).
    """
    policy = load_policy(settings)
    state = await reach(database(settings.database.url), lambda: open_state(settings, policy), {})
    try:
        await look_once(broker(settings.broker.url), lambda: _reach_broker(settings))
    except BaseException:
        await close_state(state)
        raise
    try:
        async with (
            notification_relay(settings, state.records.notifications, process_relay_id("api")),
            watching(policy, settings.api.policy_reload_seconds),
        ):
            await _serve_until_signalled(settings, state)
    finally:
        await close_state(state)


async def _reach_broker(settings: Settings) -> None:
    """Log in to the broker and leave: credentials and virtual host are checked at start, the
    task queue is used on first import."""
    connection = await aio_pika.connect(settings.broker.url, timeout=10)
    await connection.close()


async def _serve_until_signalled(settings: Settings, state: ApiState) -> None:
    """Listen until SIGTERM/SIGINT, then finish the requests in flight."""
    runner = web.AppRunner(
        build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
    )
    await runner.setup()
    metrics = None
    try:
        if settings.api.metrics_listen:
            metrics = await start_metrics(settings.api.metrics_listen, state.registry)
        await listen(runner, settings.api.listen, "[api] listen")
        address = runner.addresses[0]
        log.info(
            "imgworker api (auth %s) listening on %s:%s",
            settings.api.auth,
            address[0],
            address[1],
        )
        await _report_catalog(state)
        await _until_signalled()
        log.info("stopping: finishing requests in flight")
    finally:
        await runner.cleanup()
        if metrics is not None:
            await metrics.cleanup()


async def _report_catalog(state: ApiState) -> None:
    """With Keystone: log where the catalog sends clients (it never stops the API starting)."""
    if state.keystone is None:
        return
    region = state.settings.keystone.region_name
    try:
        endpoints = await state.keystone.image_endpoints()
    except KeystoneUnavailable:
        log.warning("keystone: cannot log in to read the catalog now; will validate tokens later")
        return
    if endpoints:
        log.info("keystone: image endpoints in region %s: %s", region, "; ".join(endpoints))
    else:
        log.warning(
            "keystone: the catalog has no image endpoint in region %s: clients that use the "
            "catalog will not find this API (register it: openstack endpoint create ... image)",
            region,
        )


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def run_api(settings: Settings) -> int:
    """``imgworker api``: the exit status (2 when its exposure or the database refuses it, or
    a policy file cannot be applied; 3 when ``[api] listen`` cannot be listened on)."""
    exposure = exposure_of(settings.api)
    if (refusal := exposure.refusal()) is not None:
        log.error("cannot start: %s", refusal)
        return CONFIGURATION_REFUSED
    for warning in exposure.warnings():
        log.warning(warning)
    if (shared := settings.database.shared_use_warning()) is not None:
        log.warning("%s", shared)
    try:
        asyncio.run(serve(settings))
    except (DependencyRefused, CacheDirectoryUnusable) as refused:
        log.error("cannot start: %s", refused)
        return CONFIGURATION_REFUSED
    except PolicyFileError as refused:
        log.error("cannot start: policy not applied: %s", refused)
        return CONFIGURATION_REFUSED
    except CannotListen as refused:
        log.error("cannot start: %s", refused)
        return CANNOT_LISTEN
    return 0
