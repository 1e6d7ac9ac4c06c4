"""The cache of one ``imgworker api`` node, as the API and the command bus use it.

Downloads ask :meth:`NodeCache.open` for the bytes of an image; the cache API and
``imgworker cache`` change the cache through commands (:mod:`worker.cache.bus`) that every
node applies with :meth:`NodeCache.apply`. The node that takes an API request applies the
command itself before answering (so what it lists next reflects it), then sends it to every
node, itself included: applying a command twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from flows.background import cancel_and_wait
from flows.errors import NotFound
from flows.records import ImageRecord, Location
from flows.states import ImageStatus
from flows.stores.base import Store
from worker.cache.bodies import EntryBody, FillBody, ImageBody, StoreBody, readable_location
from worker.cache.bus import Action, CacheBus, CacheCommand, ClearTarget, consume
from worker.cache.directory import CacheDirectory, Entry
from worker.cache.entry_file import footprint
from worker.cache.errors import CorruptBlock, FillFailed, FillReason
from worker.cache.fill import Expected, Fill
from worker.cache.fills import Fills
from worker.cache.maintenance import Maintenance, Pruned, held_entry
from worker.cache.metrics import CacheMetrics, EvictReason, MissPath, SkipReason
from worker.cache.prefetcher import Prefetcher
from worker.cache.records import EntryRow, EntryState, SqlCacheRecords
from worker.cache.removal import Removal
from worker.config.settings import BrokerSettings, CacheSettings
from worker.db.images import SqlImageRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who this node is: its stable name and the URL it is reached at directly."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Listing:
    """What ``GET /v2/cache`` answers for this node."""

    cached: list[EntryRow]
    queued: list[str]


class PrefetchLater(Exception):
    """A queued image cannot be fetched now; the prefetcher tries again later."""


class NodeCache:
    """This node's cache: its directory, fills, queue, maintenance and command bus."""

    def __init__(
        self,
        settings: CacheSettings,
        identity: NodeIdentity,
        broker: BrokerSettings,
        records: SqlCacheRecords,
        images: SqlImageRepository,
        stores: dict[str, Store],
        metrics: CacheMetrics,
    ) -> None:
        assert settings.dir is not None, "build a NodeCache only when [cache] dir is set"
        self.settings = settings
        self.identity = identity
        self._broker = broker
        self.records = records
        self._images = images
        self._stores = stores
        self.metrics = metrics
        self.directory = CacheDirectory(settings.dir, settings.max_size)
        self.bus = CacheBus(broker)
        self._removal = Removal(self.directory, records, identity.name, metrics)
        self.fills = Fills(
            self.directory, self._removal, records, identity.name, metrics, settings.stall_seconds
        )
        self.prefetcher = Prefetcher(
            self._prefetch, settings.prefetch_concurrency, settings.prefetch_retry_seconds
        )
        self.maintenance = Maintenance(
            self.directory, self.fills, self._removal, records, identity.name
        )
        self._consumer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        metrics.max_bytes.set(settings.max_size)
        metrics.bytes.set_function(lambda: self.directory.used)
        metrics.entries.set_function(lambda: len(self.directory.entries()))
        metrics.queued.set_function(self.prefetcher.waiting)

    @property
    def name(self) -> str:
        """This node's name."""
        return self.identity.name

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the directory, index it, catch up with the records, start the background work."""
        await asyncio.to_thread(self.directory.lock)
        recovery = await asyncio.to_thread(self.directory.recover)
        if recovery.removed:
            log.warning("cache: removed at start (not entries): %s", ", ".join(recovery.removed))
        await self.records.register(self.name, self.identity.url)
        rows = await self.records.entries(self.name)
        for row in rows:
            entry = self.directory.get(row.image_id)
            if entry is not None and row.state == EntryState.CACHED:
                entry.hits, entry.last_accessed = row.hits, row.last_accessed or entry.last_accessed
        await self.maintenance.clean()
        await self.maintenance.prune()
        self.prefetcher.start()
        for row in rows:
            if row.state == EntryState.QUEUED:
                self.prefetcher.submit(row.image_id)
        self._consumer = asyncio.create_task(
            consume(self._broker, self.name, self.apply), name="cache-commands"
        )
        self.maintenance.start(self.settings.prune_interval_seconds)
        log.info(
            "cache: node %s at %s, %d entries, %d of %d bytes",
            self.name,
            self.settings.dir,
            len(recovery.entries),
            self.directory.used,
            self.settings.max_size,
        )

    async def close(self) -> None:
        """Stop everything; fills under way are discarded (the next start finds no trace)."""
        await cancel_and_wait(self._consumer)
        await self.maintenance.close()
        await self.prefetcher.close()
        await self.fills.close()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.bus.close()
        self.directory.unlock()

    # -- downloads ------------------------------------------------------------------------

    async def open(self, image: ImageRecord, store: Store, location: Location) -> ImageBody:
        """The bytes of ``image`` for one download: cached, following a fill, or from the store."""
        expected = Expected.of(image)
        if expected is None:
            self.metrics.skipped(SkipReason.UNVERIFIABLE)
            return await self._uncached(store, location)
        entry = self.directory.get(image.id)
        if entry is not None and not expected.matches(entry.facts):
            await self._removal.image(image.id, EvictReason.IMAGE_GONE)
            entry = None
        if entry is not None:
            body = await self._open_entry(entry)
            if body is not None:
                return body
        fill = self.fills.get(image.id)
        if fill is not None:
            if fill.expected != expected:
                return await self._uncached(store, location)
            self.metrics.missed(MissPath.JOINED)
            return self._follow(fill)
        fill = self.fills.start(image.id, expected, lambda: store.open(location.url))
        if fill is None:
            self.metrics.skipped(SkipReason.NO_ROOM)
            return await self._uncached(store, location)
        self.metrics.missed(MissPath.FILL)
        return self._follow(fill)

    def _follow(self, fill: Fill) -> FillBody:
        return FillBody(fill, self.settings.verify_reads, self.fills.leave)

    async def _uncached(self, store: Store, location: Location) -> StoreBody:
        self.metrics.missed(MissPath.UNCACHED)
        return StoreBody(await store.open(location.url))

    async def _open_entry(self, entry: Entry) -> EntryBody | None:
        self.directory.open_entry(entry)
        try:
            fd = await asyncio.to_thread(os.open, entry.path, os.O_RDONLY)
        except OSError as exc:
            self.directory.close_entry(entry)
            log.warning("cache: entry %s unreadable (%s); reading the store", entry.image_id, exc)
            await self._drop(entry, EvictReason.INVALID)
            return None
        self.metrics.hits.inc()
        self._spawn(self.records.hit(self.name, entry.image_id, entry.hits, entry.last_accessed))

        async def corrupt(error: CorruptBlock) -> None:
            log.error("cache: image %s: %s; entry removed", entry.image_id, error)
            await self._drop(entry, EvictReason.CORRUPT)

        return EntryBody(self.directory, entry, fd, self.settings.verify_reads, corrupt)

    async def _drop(self, entry: Entry, reason: EvictReason) -> None:
        if self.directory.get(entry.image_id) is entry:
            await self._removal.image(entry.image_id, reason)

    # -- commands (the cache API, imgworker cache, image deletion) -------------------------

    async def command(self, command: CacheCommand) -> None:
        """Apply ``command`` here, then send it to every node (raises if the broker is down)."""
        await self.apply(command)
        await self.bus.send(command)

    async def apply(self, command: CacheCommand) -> None:
        """Apply one command to this node (idempotent)."""
        if command.action == Action.QUEUE:
            assert command.image_id is not None
            await self._queue(command.image_id)
        elif command.action == Action.DELETE:
            assert command.image_id is not None
            target = command.target or ClearTarget.BOTH
            await self._delete(command.image_id, target, EvictReason.OPERATOR)
        elif command.action == Action.IMAGE_DELETED:
            assert command.image_id is not None
            await self._delete(command.image_id, ClearTarget.BOTH, EvictReason.IMAGE_GONE)
        elif command.action == Action.CLEAR:
            await self._clear(command.target or ClearTarget.BOTH)
        elif command.action == Action.PRUNE:
            await self.maintenance.prune()
        elif command.action == Action.CLEAN:
            await self.maintenance.clean()

    async def _queue(self, image_id: str) -> None:
        if self.directory.get(image_id) is not None:
            return
        await self.records.queue(self.name, image_id)
        self.prefetcher.submit(image_id)

    async def _delete(self, image_id: str, target: ClearTarget, reason: EvictReason) -> None:
        if target in (ClearTarget.QUEUE, ClearTarget.BOTH):
            self.prefetcher.cancel(image_id)
            await self.records.forget(self.name, [image_id], EntryState.QUEUED)
        if target in (ClearTarget.CACHE, ClearTarget.BOTH):
            fill = self.fills.get(image_id)
            if fill is not None:
                fill.unwanted = True
            await self._removal.image(image_id, reason)
            await self.records.forget(self.name, [image_id], EntryState.CACHED)

    async def _clear(self, target: ClearTarget) -> None:
        if target in (ClearTarget.QUEUE, ClearTarget.BOTH):
            self.prefetcher.cancel_all()
            await self.records.forget(self.name, None, EntryState.QUEUED)
        if target in (ClearTarget.CACHE, ClearTarget.BOTH):
            for fill in self.fills.running():
                fill.unwanted = True
            removed = [e for e in self.directory.entries() if self.directory.remove(e.image_id)]
            await self._removal.removed(removed, EvictReason.OPERATOR)
            await self.records.forget(self.name, None, EntryState.CACHED)

    async def listing(self) -> Listing:
        """This node's cached images (from its disk) and queued ones (``GET /v2/cache``)."""
        queued = await self.records.entries(self.name, EntryState.QUEUED)
        entries = sorted(self.directory.entries(), key=lambda entry: entry.image_id)
        return Listing(
            cached=[_row_of(self.name, entry) for entry in entries],
            queued=[row.image_id for row in queued],
        )

    def holds_or_queues(self, listing: Listing, image_id: str) -> bool:
        """Whether ``image_id`` is in ``listing`` (Glance's 404 test for DELETE)."""
        return image_id in listing.queued or any(row.image_id == image_id for row in listing.cached)

    async def prune(self) -> Pruned:
        """Prune this node now (``POST /v2/cache/prune``)."""
        return await self.maintenance.prune()

    async def clean(self) -> None:
        """Clean this node now (``POST /v2/cache/clean``)."""
        await self.maintenance.clean()

    # -- the prefetcher's fetch -----------------------------------------------------------

    async def _prefetch(self, image_id: str) -> None:
        """Fetch one queued image; return when it is cached or no longer wanted."""
        try:
            image = await self._images.get(image_id)
        except NotFound:
            return await self._unqueue(image_id, "the image does not exist (any more)")
        expected = Expected.of(image)
        location = _location(image, self._stores)
        if image.status != ImageStatus.ACTIVE or location is None or expected is None:
            return await self._unqueue(image_id, f"it is {image.status}, without data to verify")
        entry = self.directory.get(image_id)
        if entry is not None and expected.matches(entry.facts):
            return await self._record(entry)
        if footprint(expected.size) > self.settings.max_size:
            return await self._unqueue(image_id, "it is larger than [cache] max_size")
        store = self._stores[location.store]
        fill = self.fills.get(image_id) or self.fills.start(
            image_id, expected, lambda: store.open(location.url)
        )
        if fill is None:
            raise PrefetchLater("no room now: every entry is being read")
        fill.users += 1
        try:
            await fill.done
        except FillFailed as failed:
            if failed.why in (FillReason.MISMATCH, FillReason.UNWANTED):
                return await self._unqueue(image_id, str(failed))
            raise
        finally:
            self.fills.leave(fill)
        return None

    async def _unqueue(self, image_id: str, why: str) -> None:
        log.warning("cache: not caching queued image %s: %s", image_id, why)
        await self.records.forget(self.name, [image_id], EntryState.QUEUED)

    async def _record(self, entry: Entry) -> None:
        await self.records.cached(self.name, held_entry(entry))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a records write in the background; its failure is logged (the cleaner mends)."""

        async def logged() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("cache: a records write failed (%s); the cleaner will mend it", exc)

        task = asyncio.create_task(logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _location(image: ImageRecord, stores: dict[str, Store]) -> Location | None:
    try:
        return readable_location(image, stores)
    except NotFound:
        return None


def _row_of(node: str, entry: Entry) -> EntryRow:
    return EntryRow(
        node=node,
        image_id=entry.image_id,
        state=EntryState.CACHED,
        size=entry.facts.size,
        hits=entry.hits,
        last_accessed=entry.last_accessed,
        last_modified=entry.last_modified,
    )
