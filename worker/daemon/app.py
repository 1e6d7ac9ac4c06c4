"""``imgworker run``: the daemon process, from start to a clean exit.

Start: the HTTP endpoints first (alive, not ready), then the database and the broker, each
waited for with backoff while unreachable (``/readyz`` names what it waits for); a
dependency that refuses the configuration ends the process with status 2 and one log line.

Signals: the first SIGTERM/SIGINT (or ``POST /drain``) starts a drain — readiness goes false,
the consumer is cancelled, running tasks get ``[worker] drain_grace_seconds`` to finish,
then are reverted and requeued; a second signal cancels the running tasks at once (they are
still reverted and requeued); a third exits immediately (the broker redelivers whatever was
unacknowledged, and the next worker cleans up after the lease).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable
from typing import TypeVar

from flows.background import cancel_and_wait
from worker.config.settings import Settings
from worker.config.source import CANNOT_LISTEN, CONFIGURATION_REFUSED
from worker.daemon import startup
from worker.daemon.client import LazyPublisher
from worker.daemon.consumer import Consumer
from worker.daemon.http import Health, bound_address, start_http
from worker.daemon.listening import CannotListen
from worker.daemon.logs import log_uncaught
from worker.daemon.metrics import Metrics
from worker.daemon.startup import DependencyRefused, reach
from worker.daemon.sweeper import DeleteSweeper
from worker.notifications.relay import notification_relay
from worker.tasks.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")


class Daemon:
    """One worker process: services, consumer, HTTP endpoints, signal handling."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(staging_dir=settings.staging.dir)
        self.health = Health()
        self._drain = asyncio.Event()
        self._signals = 0
        self._consumer: Consumer | None = None
        self._services: Services | None = None

    def request_drain(self) -> None:
        """Start a graceful drain (idempotent)."""
        if not self._drain.is_set():
            log.info("drain requested")
            self.health.draining = True
            self.metrics.draining(True)
            self._drain.set()

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.info("%s: draining (again to cancel running tasks now)", name)
            self.request_drain()
        elif self._signals == 2 and self._consumer is not None:
            log.warning("%s: cancelling running tasks now (again to exit at once)", name)
            asyncio.get_running_loop().create_task(self._consumer.cancel_running())
        else:
            log.error("%s: exiting at once", name)
            os._exit(1)

    async def run(self) -> None:
        """Serve HTTP, wait for the database and the broker, consume until drained.

        Raises :class:`~worker.daemon.startup.DependencyRefused` when a dependency refuses
        the configuration (no wait can help).
        """
        settings = self.settings
        settings.staging.dir.mkdir(parents=True, exist_ok=True)
        # Liveness first: a worker waiting for its broker is alive, just not ready.
        http = await start_http(
            settings, self.metrics, self.health, self._check_database, self.request_drain
        )
        try:
            host, port = bound_address(http)
            log.info(
                "worker %s serving /metrics /livez /readyz on %s:%d",
                settings.worker.worker_id(),
                host,
                port,
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
            await self._serve()
        finally:
            await http.cleanup()
        log.info("worker stopped")

    async def _serve(self) -> None:
        settings = self.settings
        services = await self._unless_drained(
            reach(startup.database(settings.database.url), self._open_services, self.health.waiting)
        )
        if services is None:
            return
        self._services = services
        relay = notification_relay(
            settings, services.records.notifications, services.worker_id, self.metrics
        )
        try:
            async with relay:
                await self._consume(services)
        finally:
            self._services = None
            await services.close()

    async def _consume(self, services: Services) -> None:
        """Consume until drained (the notification relay runs around this, see _serve)."""
        settings = self.settings
        consumer = self._consumer = Consumer(services, self.metrics, self.health)
        try:
            await self._unless_drained(
                reach(startup.broker(settings.broker.url), consumer.start, self.health.waiting)
            )
            publisher = LazyPublisher(settings.broker)
            sweeper = DeleteSweeper(
                services.records.deletions,
                publisher,
                settings.worker,
                self.metrics.pending_deletions,
            )
            try:
                async with sweeper:
                    await self._drain.wait()
                await consumer.drain(settings.worker.drain_grace_seconds)
            finally:
                await publisher.close()
        finally:
            await consumer.close()

    async def _open_services(self) -> Services:
        """Open the records (upgrading the schema when configured) and see the database answer."""
        services = await Services.open(self.settings, self.metrics)
        try:
            await services.ping()
        except BaseException:
            await services.close()
            raise
        return services

    async def _check_database(self) -> None:
        # Before the records are open, readiness already names the database it waits for.
        if self._services is not None:
            await self._services.ping()

    async def _unless_drained(self, work: Awaitable[T]) -> T | None:
        """``work``'s result, or None if a drain starts first (``work`` is then cancelled)."""
        job = asyncio.ensure_future(work)
        drained = asyncio.ensure_future(self._drain.wait())
        try:
            await asyncio.wait({job, drained}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
            if not job.done():
                await cancel_and_wait(job)
        return None if job.cancelled() else job.result()


def run_daemon(settings: Settings) -> int:
    """``imgworker run``: the daemon's exit status (2 when a dependency refuses it, 3 when
    ``[worker] http`` cannot be listened on).

    Everything it reports goes through logging, one JSON object per line when so configured:
    a refusal is one error line, anything unforeseen one critical record with its traceback.
    """
    log_uncaught()
    if (warning := settings.database.shared_use_warning()) is not None:
        log.warning("%s", warning)
    try:
        asyncio.run(Daemon(settings).run())
    except DependencyRefused as refused:
        log.error("cannot start: %s", refused)
        return CONFIGURATION_REFUSED
    except CannotListen as refused:
        log.error("cannot start: %s", refused)
        return CANNOT_LISTEN
    return 0
