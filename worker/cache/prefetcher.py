"""Fetching queued images into this node's cache: at once, a few at a time, retried.

Glance's prefetcher waited for a periodic job (300 s) and one store error killed its thread.
Here a queued image is fetched as soon as it is submitted, by ``concurrency`` workers; a fetch
that fails for a reason that may pass (the store down, no room while everything is being
read) is tried again after ``retry_seconds``, doubling up to :data:`MAX_RETRY_SECONDS`; any
other error is logged and retried the same way. Nothing a fetch raises stops the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from flows.background import cancel_and_wait

log = logging.getLogger(__name__)

#: Longest wait before a failed fetch is tried again.
MAX_RETRY_SECONDS = 600.0

Fetch = Callable[[str], Coroutine[Any, Any, None]]


class Prefetcher:
    """The queued images of one node and the workers that fetch them."""

    def __init__(self, fetch: Fetch, concurrency: int, retry_seconds: float) -> None:
        self._fetch = fetch
        self._concurrency = concurrency
        self._retry_seconds = retry_seconds
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        #: Queued, being fetched, or waiting for a retry.
        self._pending: set[str] = set()
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._delays: dict[str, float] = {}
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the workers."""
        self._workers = [
            asyncio.create_task(self._work(), name=f"cache-prefetch-{n}")
            for n in range(self._concurrency)
        ]

    async def close(self) -> None:
        """Stop the workers and the fetches under way (the queue stays in the records)."""
        for handle in self._retries.values():
            handle.cancel()
        for task in [*self._workers, *self._fetching.values()]:
            await cancel_and_wait(task)

    def submit(self, image_id: str) -> None:
        """Fetch ``image_id`` (nothing more if it is already pending)."""
        if image_id in self._pending:
            return
        self._pending.add(image_id)
        self._queue.put_nowait(image_id)

    def cancel(self, image_id: str) -> None:
        """Forget ``image_id``: dequeued, its retry dropped, its fetch stopped."""
        self._pending.discard(image_id)
        self._delays.pop(image_id, None)
        handle = self._retries.pop(image_id, None)
        if handle is not None:
            handle.cancel()
        task = self._fetching.get(image_id)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        """Forget every queued image."""
        for image_id in list(self._pending):
            self.cancel(image_id)

    def waiting(self) -> int:
        """Images queued and not fetched yet."""
        return len(self._pending)

    async def _work(self) -> None:
        while True:
            image_id = await self._queue.get()
            if image_id not in self._pending or image_id in self._fetching:
                continue
            task = asyncio.create_task(self._fetch(image_id), name=f"cache-fetch-{image_id}")
            self._fetching[image_id] = task
            try:
                await asyncio.wait({task})
            finally:
                del self._fetching[image_id]
            self._settle(image_id, task)

    def _settle(self, image_id: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or image_id not in self._pending:
            return
        error = task.exception()
        if error is None:
            self._pending.discard(image_id)
            self._delays.pop(image_id, None)
            return
        delay = self._delays.get(image_id, self._retry_seconds)
        self._delays[image_id] = min(delay * 2, MAX_RETRY_SECONDS)
        log.warning("cache: fetching image %s failed (%s); again in %.0f s", image_id, error, delay)
        self._retries[image_id] = asyncio.get_running_loop().call_later(
            delay, self._again, image_id
        )

    def _again(self, image_id: str) -> None:
        self._retries.pop(image_id, None)
        if image_id in self._pending:
            self._queue.put_nowait(image_id)
