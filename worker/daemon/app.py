"""``imgworker run``: the daemon process, from start to a clean exit.

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

from worker.daemon.consumer import Consumer
from worker.daemon.http import Health, bound_address, start_http
from worker.daemon.metrics import Metrics
from worker.services import Services
from worker.settings import Settings

log = logging.getLogger(__name__)


class Daemon:
    """One worker process: services, consumer, HTTP endpoints, signal handling."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(staging_dir=settings.staging.dir)
        self.health = Health()
        self._drain = asyncio.Event()
        self._signals = 0
        self._consumer: Consumer | None = None

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
        """Run until drained."""
        settings = self.settings
        settings.staging.dir.mkdir(parents=True, exist_ok=True)
        services = await Services.open(settings, self.metrics)
        try:
            self._consumer = Consumer(services, self.metrics, self.health)
            http = await start_http(
                settings, self.metrics, self.health, services.ping, self.request_drain
            )
            host, port = bound_address(http)
            log.info(
                "worker %s serving /metrics /livez /readyz on %s:%d", services.worker_id, host, port
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
            try:
                await self._consumer.start()
                await self._drain.wait()
                await self._consumer.drain(settings.worker.drain_grace_seconds)
            finally:
                await self._consumer.close()
                await http.cleanup()
        finally:
            await services.close()
        log.info("worker stopped")
