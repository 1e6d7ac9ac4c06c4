"""The fills of one node: at most one per image, and each one's whole life.

:meth:`Fills.start` reserves the room first (without awaiting, so two misses of one image
can never both start a fill: the second finds the first registered), then runs the fill:
evicted entries' files removed, the store opened and read, the verified file renamed into
an entry and recorded. A fill that fails, is abandoned by its last download, or stalls is
removed with its partial file, its room given back, its reason counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

from flows.sparse import ImageReader
from worker.cache.directory import CacheDirectory, Entry, Reservation, remove_file
from worker.cache.entry_file import EntryFacts
from worker.cache.errors import FillFailed, FillReason
from worker.cache.fill import Expected, Fill
from worker.cache.metrics import CacheMetrics, EvictReason
from worker.cache.records import HeldEntry, SqlCacheRecords
from worker.cache.removal import Removal

log = logging.getLogger(__name__)

Opener = Callable[[], Awaitable[ImageReader]]


class Fills:
    """The fills running on this node, by image id."""

    def __init__(
        self,
        directory: CacheDirectory,
        removal: Removal,
        records: SqlCacheRecords,
        node: str,
        metrics: CacheMetrics,
        stall_seconds: float,
    ) -> None:
        self._directory = directory
        self._removal = removal
        self._records = records
        self._node = node
        self._metrics = metrics
        self._stall_seconds = stall_seconds
        self._running: dict[str, Fill] = {}
        #: Entries held for downloads still following a fill that became them.
        self._held: dict[Fill, Entry] = {}

    def get(self, image_id: str) -> Fill | None:
        """The fill of ``image_id`` under way on this node, if any (one that already ended,
        and is only cleaning up, is no longer followed: the next download starts anew)."""
        fill = self._running.get(image_id)
        return None if fill is None or fill.done.done() else fill

    def running(self) -> list[Fill]:
        """Every fill under way."""
        return list(self._running.values())

    def start(self, image_id: str, expected: Expected, open_store: Opener) -> Fill | None:
        """Start the one fill of ``image_id``; None when the cache has no room for it.

        Nothing here awaits: the fill is registered before any other download can look.
        The caller joins it (a :class:`~worker.cache.bodies.FillBody`) before awaiting too.
        """
        assert self.get(image_id) is None, "join the running fill instead"
        reservation = self._directory.reserve(image_id, expected.size)
        if reservation is None:
            return None
        fill = Fill(image_id, expected, self._directory.partial_path(image_id))
        self._running[image_id] = fill
        fill.task = asyncio.create_task(
            self._run(fill, reservation, open_store), name=f"cache-fill-{image_id}"
        )
        return fill

    def leave(self, fill: Fill) -> None:
        """A download (or prefetch) stopped following ``fill``; the last one ends it early."""
        fill.users -= 1
        if fill.users > 0:
            return
        if fill.done.done():
            self._settle(fill)
        elif fill.task is not None and not fill.task.done() and not fill.copied:
            fill.task.cancel()

    async def close(self) -> None:
        """Stop every fill (the API is stopping): none becomes an entry."""
        tasks = [fill.task for fill in self._running.values() if fill.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, fill: Fill, reservation: Reservation, open_store: Opener) -> None:
        try:
            await self._removal.removed(reservation.evicted, EvictReason.LRU)
            facts = await self._copy(fill, open_store)
            fill.copied = True
            if fill.unwanted:
                raise FillFailed(
                    FillReason.UNWANTED, f"image {fill.image_id} was removed while it filled"
                )
            entry = await self._publish(fill, reservation, facts)
        except BaseException as error:
            await self._discard(fill, reservation, _as_failure(fill, error))
            if not isinstance(error, Exception | asyncio.CancelledError):
                raise
        else:
            log.info("cache: image %s cached (%d bytes)", fill.image_id, entry.facts.size)
            await self._record(entry)
        finally:
            if self._running.get(fill.image_id) is fill:
                del self._running[fill.image_id]
            if fill.users == 0:
                self._settle(fill)

    async def _copy(self, fill: Fill, open_store: Opener) -> EntryFacts:
        try:
            reader = await open_store()
        except Exception as exc:
            raise FillFailed(
                FillReason.STORE, f"image {fill.image_id}'s store could not be opened: {exc}"
            ) from exc
        try:
            return await fill.copy(reader, self._stall_seconds, self._metrics.store_read_bytes.inc)
        finally:
            reader.close()

    async def _publish(self, fill: Fill, reservation: Reservation, facts: EntryFacts) -> Entry:
        path = self._directory.entry_path(fill.image_id)
        try:
            await asyncio.to_thread(os.replace, fill.partial, path)
        except OSError as exc:
            raise FillFailed(FillReason.DISK, f"the entry could not be renamed: {exc}") from exc
        now = time.time()
        entry = Entry(fill.image_id, facts, path, last_accessed=now, last_modified=now)
        self._directory.admit(reservation, entry)
        if fill.users > 0:
            self._directory.pin(entry)
            self._held[fill] = entry
        fill.succeed(entry)
        self._metrics.fills.inc()
        return entry

    async def _record(self, entry: Entry) -> None:
        held = HeldEntry(entry.image_id, entry.facts.size, 0, 0.0, entry.last_modified)
        try:
            await self._records.cached(self._node, held)
        except Exception as exc:
            log.warning("cache: entry %s not recorded (%s); the cleaner will", entry.image_id, exc)

    async def _discard(self, fill: Fill, reservation: Reservation, failure: FillFailed) -> None:
        """Remove the partial file, then give its room back, then tell its downloads."""
        try:
            await asyncio.shield(asyncio.to_thread(remove_file, fill.partial))
        finally:
            self._directory.release(reservation)
            fill.fail(failure)
        self._metrics.fill_failed(failure.why)
        log.warning("cache: fill of %s discarded (%s): %s", fill.image_id, failure.why, failure)

    def _settle(self, fill: Fill) -> None:
        """The fill ended and nobody follows it: release its descriptor and its entry."""
        fill.close_reader()
        entry = self._held.pop(fill, None)
        if entry is not None:
            self._directory.close_entry(entry)


def _as_failure(fill: Fill, error: BaseException) -> FillFailed:
    if isinstance(error, FillFailed):
        return error
    if isinstance(error, asyncio.CancelledError):
        return FillFailed(
            FillReason.ABANDONED,
            f"every download of image {fill.image_id} went away before its fill ended",
        )
    log.error("cache: fill of image %s failed unexpectedly", fill.image_id, exc_info=error)
    return FillFailed(FillReason.STORE, f"the fill of image {fill.image_id} failed: {error}")
