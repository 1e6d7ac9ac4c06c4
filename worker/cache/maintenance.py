"""The pruner and the cleaner of one node, on a schedule and on demand.

- **prune**: bring the cache within ``[cache] max_size`` by removing unread entries, least
  recently used first. Fills reserve their room before they start, so this finds work only
  after ``max_size`` was lowered; it is Glance's pruner, kept for that and for the API.
- **clean**: remove partial files no fill of this process writes, entries of images that
  were deleted (or whose data changed) while this node could not hear of it, and make the
  node's rows in the database say exactly what its disk holds. Stalled fills end themselves
  (``[cache] stall_seconds``); files that are not entries are removed at start.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from flows.background import cancel_and_wait
from worker.cache.directory import CacheDirectory, Entry, remove_file
from worker.cache.fills import Fills
from worker.cache.metrics import EvictReason
from worker.cache.records import HeldEntry, ImageState, SqlCacheRecords
from worker.cache.removal import Removal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pruned:
    """What a prune removed (Glance's ``POST /v2/cache/prune`` answer)."""

    files: int
    bytes: int


class Maintenance:
    """Prunes and cleans one node's cache."""

    def __init__(
        self,
        directory: CacheDirectory,
        fills: Fills,
        removal: Removal,
        records: SqlCacheRecords,
        node: str,
    ) -> None:
        self._directory = directory
        self._fills = fills
        self._removal = removal
        self._records = records
        self._node = node
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self, interval: float) -> None:
        """Clean and prune every ``interval`` seconds."""
        self._task = asyncio.create_task(self._every(interval), name="cache-maintenance")

    async def close(self) -> None:
        """Stop the schedule."""
        await cancel_and_wait(self._task)

    async def prune(self) -> Pruned:
        """Remove LRU entries until the cache is within its limit."""
        async with self._lock:
            victims = self._directory.over_limit()
            await self._removal.removed(victims, EvictReason.LRU)
            return Pruned(len(victims), sum(entry.footprint for entry in victims))

    async def clean(self) -> None:
        """Remove what no longer belongs here; put the node's rows right."""
        async with self._lock:
            await self._orphans()
            await self._gone_images()
            held = [held_entry(entry) for entry in self._directory.entries()]
            await self._records.reconcile(self._node, held)

    async def _orphans(self) -> None:
        filling = {fill.partial.name for fill in self._fills.running()}
        incomplete = self._directory.incomplete

        def sweep() -> list[str]:
            return [
                path.name
                for path in incomplete.iterdir()
                if path.name not in filling and remove_file(path)
            ]

        removed = await asyncio.to_thread(sweep)
        if removed:
            log.warning("cache: removed partial files no fill wrote: %s", ", ".join(removed))

    async def _gone_images(self) -> None:
        entries = self._directory.entries()
        states = await self._records.image_states([entry.image_id for entry in entries])
        for entry in entries:
            state = states.get(entry.image_id)
            if not _unchanged(state, entry) and self._directory.get(entry.image_id) is entry:
                await self._removal.image(entry.image_id, EvictReason.IMAGE_GONE)

    async def _every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.clean()
                pruned = await self.prune()
                if pruned.files:
                    log.info("cache: pruned %d files, %d bytes", pruned.files, pruned.bytes)
            except Exception:
                log.warning("cache: maintenance failed; again in %.0f s", interval, exc_info=True)


def held_entry(entry: Entry) -> HeldEntry:
    """What the records should say of ``entry``."""
    return HeldEntry(
        entry.image_id, entry.facts.size, entry.hits, entry.last_accessed, entry.last_modified
    )


def _unchanged(state: ImageState | None, entry: Entry) -> bool:
    """Whether the image is still there, with the data ``entry`` holds."""
    return state is not None and state.has_data and state.hash_value == entry.facts.hash_value
