"""Stores written in turn: one write at a time, in the targets' order, none waiting on records.

With ``max_parallel_stores = 1`` the stores are written one after the other, as the guide
describes. What one store's *write* waits for is the end of the write before it, not the end
of that store's *record*: the first record also waits for the data's hashes (the image may
not go active without them), and the disk or the link has nothing to do meanwhile. So each
write starts as soon as the one before ended, while the steps still record the stores one by
one, in order, exactly as before. Never two stores written at once; with every store
required, the writes after a failed one are never attempted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from flows.context import ImportContext
from flows.errors import LockLost, StoreError
from flows.stores.base import StoredImage

log = logging.getLogger(__name__)


class DataWriter(Protocol):
    """A store step's data write, without its record."""

    @property
    def store(self) -> str:
        """The store written."""

    async def write_data(self, ctx: ImportContext) -> StoredImage:
        """Write the data into the store; raise :class:`StoreError` if it cannot."""


class _NotAttempted(Exception):
    """A write never started: the one before it failed, or was stopped, and this one may not
    go on (every store required, or the import is ending)."""


class WritesInTurn:
    """The data writes of stores written one after the other, each started when the one
    before it ended; the store steps take their results in turn (:meth:`take`).

    Writes that no step took (the flow failed or was cancelled first) are stopped and what
    they wrote is removed by :meth:`abandon`, which every store step's revert calls.
    """

    def __init__(self) -> None:
        self._writers: list[DataWriter] = []
        self._writes: dict[str, asyncio.Task[StoredImage]] = {}
        self._started: set[str] = set()
        self._begun = False

    def join(self, writer: DataWriter) -> None:
        """Write ``writer``'s store after those joined before it."""
        if self._begun:
            raise RuntimeError("the writes in turn have already started")
        self._writers.append(writer)

    async def take(self, ctx: ImportContext, store: str) -> StoredImage:
        """The outcome of ``store``'s write, starting the writes at the first call.

        Cancelling the caller cancels that write (and so every write after it).
        """
        if not self._begun:
            self._begun = True
            self._start(ctx)
        return await self._writes.pop(store)

    def _start(self, ctx: ImportContext) -> None:
        previous: asyncio.Task[StoredImage] | None = None
        for writer in self._writers:
            previous = asyncio.create_task(
                self._write_after(previous, writer, ctx), name=f"write:{writer.store}"
            )
            self._writes[writer.store] = previous

    async def _write_after(
        self,
        previous: asyncio.Task[StoredImage] | None,
        writer: DataWriter,
        ctx: ImportContext,
    ) -> StoredImage:
        if previous is not None:
            # Waits for the end without taking on the previous write's outcome: its step does.
            await asyncio.wait([previous])
            if previous.cancelled():
                raise _NotAttempted(f"the write before {writer.store!r} was stopped")
            failure = previous.exception()
            if failure is not None and not _may_go_on(ctx, failure):
                raise _NotAttempted(f"the write before {writer.store!r} failed")
        await ctx.assert_holds()
        self._started.add(writer.store)
        return await writer.write_data(ctx)

    async def abandon(self, ctx: ImportContext, error: BaseException) -> None:
        """Stop the writes no step took and remove what they wrote.

        Not after :class:`LockLost`, nor once the task no longer holds its image: the task
        that took the image over discards every target's data itself before writing (what a
        stopped write leaves, it removes too).
        """
        writes, self._writes = self._writes, {}
        for write in writes.values():
            write.cancel()
        await asyncio.gather(*writes.values(), return_exceptions=True)
        if isinstance(error, LockLost) or await ctx.taken_over():
            return
        for name, write in writes.items():
            if name not in self._started:
                continue
            store = ctx.stores[name]
            if not write.cancelled() and write.exception() is None:
                log.info("removing %s, written ahead of a record that never came", name)
                await store.delete(write.result().url)
            else:
                await store.discard(ctx.image_id)


def _may_go_on(ctx: ImportContext, failure: BaseException) -> bool:
    """Whether the writes after a failed one go on: as the step that records it would."""
    return ctx.request.allow_failure and isinstance(failure, (StoreError, OSError))
