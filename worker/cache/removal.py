"""Removing entries: the index first (at once), then the files (in a thread), then the rows.

A row left behind by a database outage does no harm (the disk is the truth, and a download
never trusts a row); the node's cleaner drops it at its next run.
"""

from __future__ import annotations

import asyncio
import logging

from worker.cache.directory import CacheDirectory, Entry, remove_file
from worker.cache.metrics import CacheMetrics, EvictReason
from worker.cache.records import EntryState, SqlCacheRecords

log = logging.getLogger(__name__)


class Removal:
    """Takes entries out of one node's cache and its records."""

    def __init__(
        self,
        directory: CacheDirectory,
        records: SqlCacheRecords,
        node: str,
        metrics: CacheMetrics,
    ) -> None:
        self._directory = directory
        self._records = records
        self._node = node
        self._metrics = metrics

    async def image(self, image_id: str, reason: EvictReason) -> Entry | None:
        """Remove ``image_id``'s entry if this node holds it; the entry removed, or None."""
        entry = self._directory.remove(image_id)
        if entry is not None:
            await self.removed([entry], reason)
        return entry

    async def removed(self, entries: list[Entry], reason: EvictReason) -> None:
        """Finish removing ``entries``, already out of the index: files, metrics, rows."""
        if not entries:
            return
        await asyncio.to_thread(lambda: [remove_file(entry.path) for entry in entries])
        self._metrics.evicted(reason, len(entries))
        log.info(
            "cache: removed %d entr%s (%s): %s",
            len(entries),
            "y" if len(entries) == 1 else "ies",
            reason,
            ", ".join(entry.image_id for entry in entries),
        )
        await self.forget_rows([entry.image_id for entry in entries], EntryState.CACHED)

    async def forget_rows(self, image_ids: list[str] | None, state: EntryState | None) -> None:
        """Drop this node's rows; a database outage is logged and left to the cleaner."""
        try:
            await self._records.forget(self._node, image_ids, state)
        except Exception as exc:
            log.warning("cache: rows not updated (%s); the cleaner will put them right", exc)
