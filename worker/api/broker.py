"""The API's connection to RabbitMQ: opened on first use, reopened after a failure.

An API replica must answer reads while the broker is down, so it does not connect at start;
a request that needs to publish while the broker is unreachable gets 503 and nothing is left
half-done (the import task is ended failed, a delete task stays pending for the sweeper).
"""

from __future__ import annotations

import asyncio
import logging

from flows.errors import TransientError
from worker.daemon.client import Publishable, Publisher
from worker.settings import BrokerSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(TransientError):
    """The task queue cannot take a message now."""

    reason = "broker_unavailable"


class LazyPublisher:
    """A :class:`Publisher` connected on demand and replaced when it fails."""

    def __init__(self, broker: BrokerSettings) -> None:
        self._broker = broker
        self._publisher: Publisher | None = None
        self._lock = asyncio.Lock()

    async def publish(self, message: Publishable) -> None:
        """Publish and wait for the broker's confirm, or raise :class:`BrokerUnavailable`."""
        try:
            publisher = await self._connected()
            await publisher.publish(message)
        except BrokerUnavailable:
            raise
        except Exception as exc:
            await self._drop()
            log.warning("publishing task %s failed: %s", message.task_id, exc)
            raise BrokerUnavailable(
                f"The task queue is unavailable ({type(exc).__name__}); try again shortly."
            ) from exc

    async def _connected(self) -> Publisher:
        async with self._lock:
            if self._publisher is None:
                publisher = Publisher(self._broker)
                try:
                    await publisher.__aenter__()
                except Exception as exc:
                    raise BrokerUnavailable(
                        f"The task queue (RabbitMQ) is unreachable: {type(exc).__name__}; "
                        "try again shortly."
                    ) from exc
                self._publisher = publisher
            return self._publisher

    async def _drop(self) -> None:
        async with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                await publisher.__aexit__(None, None, None)
            except Exception:
                log.debug("closing a failed broker connection", exc_info=True)

    async def close(self) -> None:
        """Close the connection if one is open."""
        await self._drop()
