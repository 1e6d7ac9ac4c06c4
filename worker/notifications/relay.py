"""Publishing what waits in the outbox: one relay per worker, API and embedded process.

``async with Relay(...):`` starts the loop and, on leaving, stops it and sends what still
waits (for at most :data:`FLUSH_SECONDS`). Each pass takes the waiting notifications oldest
first, claims each (:meth:`SqlNotifications.claim`), hands it to the sink and marks it sent
once the broker has confirmed it. A broker that is down, slow or refusing stops the pass:
the notification goes back to waiting, the imports go on (they only wrote rows), one log
line says the outage began and one that it ended, and the metrics count what waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Protocol

from flows.background import cancel_and_wait
from worker.config.settings import NotificationSettings, Settings
from worker.db.notifications import SqlNotifications
from worker.notifications.sinks import AmqpSink, LogSink, Sink
from worker.notifications.wire import oslo_message

log = logging.getLogger(__name__)

#: Seconds the last pass may take when the relay stops.
FLUSH_SECONDS = 5.0
#: Longest pause between two attempts while the broker is unreachable.
MAX_BACKOFF_SECONDS = 30.0
#: Seconds between two purges of notifications sent long ago.
PURGE_EVERY_SECONDS = 600.0


class RelayObserver(Protocol):
    """Receives what a relay does (the worker's metrics)."""

    def notification_sent(self, event_type: str) -> None:
        """One notification was published."""

    def notifications_waiting(self, count: int) -> None:
        """``count`` notifications wait to be published, pool-wide."""

    def notification_failed(self) -> None:
        """An attempt to publish a notification failed."""


class NullRelayObserver:
    """Ignores everything (the API and the command line have no metrics endpoint)."""

    def notification_sent(self, event_type: str) -> None:
        """Ignore."""

    def notifications_waiting(self, count: int) -> None:
        """Ignore."""

    def notification_failed(self) -> None:
        """Ignore."""


class Relay:
    """Owns the publishing loop of one process."""

    def __init__(
        self,
        rows: SqlNotifications,
        sink: Sink,
        settings: NotificationSettings,
        relay_id: str,
        observer: RelayObserver | None = None,
    ) -> None:
        self._rows = rows
        self._sink = sink
        self._settings = settings
        self._relay_id = relay_id
        self._observer = observer or NullRelayObserver()
        self._loop: asyncio.Task[None] | None = None
        #: Why publishing fails, while it does (one log line per outage).
        self._outage: str | None = None
        self._last_purge = 0.0

    async def __aenter__(self) -> Relay:
        self._loop = asyncio.create_task(self._run(), name="notification-relay")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._loop)
        self._loop = None
        try:
            async with asyncio.timeout(FLUSH_SECONDS):
                await self.relay_once()
        except TimeoutError:
            # Not an outage: what is left waits in the database for the next relay.
            log.info("notifications: stopping; what was not sent yet waits for the next start")
        except Exception as error:
            self._failed(error)
        finally:
            await self._sink.close()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                sent = await self.relay_once()
                failures = 0
            except Exception as error:
                self._failed(error)
                sent, failures = 0, failures + 1
            await self._report_waiting()
            await self._purge_now_and_then()
            if sent == 0:
                await asyncio.sleep(self._pause(failures))

    def _pause(self, failures: int) -> float:
        """The poll interval; doubled after each failure in a row, up to a ceiling."""
        poll = self._settings.poll_seconds
        if not failures:
            return poll
        return max(poll, min(poll * 2.0**failures, MAX_BACKOFF_SECONDS))

    async def relay_once(self) -> int:
        """Publish what waits, oldest first; return how many this relay sent.

        Raises when a notification could not be published (it waits for the next pass).
        """
        sent = 0
        for row in await self._rows.pending(self._relay_id):
            if not await self._rows.claim(row.id, self._relay_id):
                continue  # another relay has it, or an earlier event of its image waits
            try:
                await self._sink.send(oslo_message(row, self._settings.publisher_id))
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._rows.release(row.id)
                raise
            await self._rows.mark_sent(row.id)
            self._observer.notification_sent(row.event_type)
            sent += 1
        if sent and self._outage is not None:
            log.info("notifications: publishing again (%s before)", self._outage)
            self._outage = None
        return sent

    def _failed(self, error: Exception) -> None:
        self._observer.notification_failed()
        if self._outage is None:
            self._outage = str(error) or type(error).__name__
            log.warning(
                "notifications: cannot publish (%s); they wait in the database and are sent "
                "once it works again",
                self._outage,
            )

    async def _report_waiting(self) -> None:
        try:
            self._observer.notifications_waiting(await self._rows.waiting())
        except Exception:
            log.debug("counting waiting notifications failed", exc_info=True)

    async def _purge_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        try:
            await self._rows.purge(timedelta(seconds=self._settings.keep_sent_seconds))
        except Exception:
            log.debug("purging sent notifications failed", exc_info=True)


def build_sink(settings: Settings) -> Sink:
    """The sink ``[notifications] driver`` names (``messaging`` or ``log``)."""
    notifications = settings.notifications
    if notifications.driver == "log":
        return LogSink()
    return AmqpSink(notifications, notifications.broker_url(settings.broker))


def process_relay_id(role: str) -> str:
    """The relay id of this process when it is not a worker (whose id is its worker id):
    ``<role>:<host>:<pid>``, unique among the processes sharing the outbox."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


def notification_relay(
    settings: Settings,
    rows: SqlNotifications,
    relay_id: str,
    observer: RelayObserver | None = None,
) -> AbstractAsyncContextManager[object]:
    """A relay for this process, or nothing when notifications are off."""
    if not settings.notifications.enabled:
        return _nothing()
    return Relay(rows, build_sink(settings), settings.notifications, relay_id, observer)


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
