"""A RabbitMQ connection made on first use and dropped after a failure.

Whoever publishes only now and then (the API's and the sweeper's task publisher, the
notification relay's sink) must neither need the broker to start nor keep a broken connection:
a :class:`LazyConnection` connects when it is first used, sets up on it what its owner
publishes through (a channel, an exchange), and is dropped by its owner when a use fails, so
that the next use connects afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import aio_pika
from aio_pika.abc import AbstractConnection

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to connect before giving up.
CONNECT_SECONDS = 10.0


class LazyConnection(Generic[T]):
    """One connection to ``url`` with what ``setup`` made on it, opened by :meth:`get`."""

    def __init__(
        self,
        url: str,
        setup: Callable[[AbstractConnection], Awaitable[T]],
        *,
        timeout: float = CONNECT_SECONDS,
    ) -> None:
        self._url = url
        self._setup = setup
        self._timeout = timeout
        self._opened: tuple[AbstractConnection, T] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        """What ``setup`` made, connecting and setting up first when nothing is open.

        A failure to connect or to set up leaves nothing open (and raises it).
        """
        async with self._lock:
            if self._opened is None:
                connection = await aio_pika.connect(self._url, timeout=self._timeout)
                try:
                    self._opened = (connection, await self._setup(connection))
                except BaseException:
                    await _close(connection)
                    raise
            return self._opened[1]

    async def drop(self) -> None:
        """Close the connection, if one is open: the next :meth:`get` opens a new one."""
        async with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            await _close(opened[0])


async def _close(connection: AbstractConnection) -> None:
    try:
        await connection.close()
    except Exception:
        # A connection being dropped has usually failed already: closing it may fail too.
        log.debug("closing a broker connection", exc_info=True)
