"""Step ``store:NAME``: write the data to one store and keep the image record true.

Stores are written one after the other (the guide's order; see :mod:`flows.steps.in_turn`),
or several at once from one read of the data (``[import] max_parallel_stores``, see
:func:`store_group`). Either way each store's step keeps the same record: the store leaves
``os_glance_importing_to_stores`` when its own write ends and joins
``os_glance_failed_import`` when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from enum import Enum

from flows.context import ImportContext
from flows.engine import Parallel
from flows.errors import LockLost, StoreError
from flows.events import Announcement, EventType, UploadFailure, failure_kind
from flows.fanout import FanOut
from flows.records import IMPORTING_TO_STORES
from flows.sparse import ImageReader, SparseFileReader
from flows.states import StepResult
from flows.steps.in_turn import WritesInTurn
from flows.stores.base import InPlaceWritable, ProgressCallback, StoredImage

log = logging.getLogger(__name__)


class Activation(Enum):
    """When a store's step sets the image ``active`` (its hashes recorded first)."""

    #: copy-image never changes the image's status.
    NEVER = "never"
    #: Failure allowed: the first store that is written.
    FIRST_SUCCESS = "first_success"
    #: Every store must succeed: the store whose write completes the set.
    ALL_WRITTEN = "all_written"


class StoreStep:
    """Writes to one target store.

    When the write ends, the store leaves ``os_glance_importing_to_stores``; a failed write
    joins ``os_glance_failed_import`` and, if failure is allowed, the flow goes on. The image
    goes ``active`` here when ``activation`` says so, with its hashes recorded first.
    """

    def __init__(
        self, store: str, *, activation: Activation, in_turn: WritesInTurn | None = None
    ) -> None:
        self.store = store
        self.activation = activation
        self.name = f"store:{store}"
        #: Where this store's data write runs when the stores are written in turn (its
        #: write may then start before this step does); None: the step writes itself.
        self._in_turn = in_turn
        #: The location written, known as soon as the store returns it.
        self._url: str | None = None
        #: True while (or if) a write may have left data that no location names yet.
        self._writing = False

    async def execute(self, ctx: ImportContext) -> None:
        """Write, record the location, update the lists, maybe activate.

        Announced as Glance's import does: ``image.prepare`` before the write,
        ``image.upload`` once the location is recorded, ``image.activate`` when the image
        goes active, and ``image.update`` once the store has left the importing list.
        """
        await ctx.assert_holds()
        await ctx.announce(EventType.IMAGE_PREPARE, self.name, store=self.store)
        try:
            activated = await self._write(ctx)
        except (StoreError, OSError) as exc:
            await self._failed(ctx, exc)
            if ctx.request.allow_failure:
                return
            raise
        if activated:
            await ctx.announce(EventType.IMAGE_ACTIVATE, "activate")
        await ctx.announce(EventType.IMAGE_UPDATE, self.name)

    def _activates(self, ctx: ImportContext) -> bool:
        if ctx.activated:
            return False
        if self.activation is Activation.FIRST_SUCCESS:
            return True
        if self.activation is Activation.ALL_WRITTEN:
            return all(t == self.store or t in ctx.written for t in ctx.targets)
        return False

    async def write_data(self, ctx: ImportContext) -> StoredImage:
        """Write the data into the store, without recording it."""
        ctx.progress.phase = f"writing to {self.store}"

        def count(written: int, skipped: int) -> None:
            ctx.observer.phase_advanced(self.name, written + skipped)
            if written:
                ctx.observer.bytes_written(self.store, written)
            if skipped:
                ctx.observer.bytes_skipped(self.store, skipped)

        return await self._store(ctx, count)

    async def _write(self, ctx: ImportContext) -> bool:
        """Write the data and record it; tell whether that activated the image."""
        store = ctx.stores[self.store]
        self._writing = True
        try:
            if self._in_turn is not None:
                stored = await self._in_turn.take(ctx, self.store)
            else:
                stored = await self.write_data(ctx)
        except StoreError:
            self._writing = False  # a store that reports a failure left nothing behind
            raise
        self._url, self._writing = stored.url, False
        try:
            activated = await self._record(ctx, stored.url)
        except BaseException:
            # Not recorded (the lock was lost, the image deleted meanwhile, the database
            # failed): no location will ever name this data, so it goes now.
            self._url = None
            await store.delete(stored.url)
            raise
        ctx.observer.store_write(self.store, StepResult.SUCCESS)
        log.info(
            "stored in %s: %d bytes written, %d zero bytes skipped",
            self.store,
            stored.bytes_written,
            stored.bytes_skipped,
        )
        return activated

    async def _record(self, ctx: ImportContext, url: str) -> bool:
        """Record the location, the store's leaving the list and, if its turn, the activation.

        One transaction, with ``image.upload`` announced in it, so the record never shows the
        store written while the image it should have activated is not yet active. Tells
        whether it activated the image.
        """
        async with ctx.activation_lock:
            activating = self._activates(ctx)
            facts = None
            if activating:
                assert ctx.data_facts is not None
                facts = await ctx.data_facts
            upload = Announcement(EventType.IMAGE_UPLOAD, self.name)
            await ctx.images.record_stored(ctx.hold, url, self.store, activate=facts, upload=upload)
            # Counted once recorded: a step that then finds every target written knows
            # every target's record is complete.
            ctx.written[self.store] = url
            ctx.activated = ctx.activated or activating
            return activating

    async def _store(self, ctx: ImportContext, count: ProgressCallback) -> StoredImage:
        """Publish what the conversion wrote into this store, or write the data."""
        store = ctx.stores[self.store]
        partial = ctx.prewritten.get(self.store)
        if partial is not None and isinstance(store, InPlaceWritable):
            size = (await asyncio.to_thread(partial.stat)).st_size
            ctx.observer.phase_started(self.name, size)
            stored = await store.publish(ctx.image_id, partial)
            del ctx.prewritten[self.store]
            # The data now lives under its final name; later readers open it there.
            ctx.data_path = store.local_path(stored.url)
            count(stored.bytes_written, stored.bytes_skipped)
            return stored
        reader = await self._reader(ctx)
        ctx.observer.phase_started(self.name, reader.size)
        try:
            return await store.add(ctx.image_id, reader, count, task_id=ctx.task_id)
        finally:
            reader.close()

    async def _reader(self, ctx: ImportContext) -> ImageReader:
        if ctx.fanout is not None:
            return ctx.fanout.reader(self.store)
        assert ctx.data_path is not None
        return await asyncio.to_thread(SparseFileReader, ctx.data_path)

    async def _failed(self, ctx: ImportContext, exc: BaseException) -> None:
        detail = str(exc) if isinstance(exc, StoreError) else f"store {self.store!r}: {exc}"
        log.warning("write to store %s failed: %s", self.store, detail)
        ctx.failed[self.store] = detail
        ctx.observer.store_write(self.store, StepResult.FAILURE)
        # Its own moment: a resumed task that now writes this store announces the success.
        moment = f"{self.name}:failed"
        failure = UploadFailure(failure_kind(exc), detail)
        await ctx.announce(EventType.IMAGE_UPLOAD, moment, failure=failure)
        await ctx.images.record_store_failure(ctx.image_id, self.store)
        await ctx.announce(EventType.IMAGE_UPDATE, moment)

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Delete the data this step wrote and forget its location.

        A write cancelled half-way (another store failed when every store must succeed, or
        the worker is stopping) is discarded by image id: no location names it yet. Not after
        :class:`LockLost`, nor once the task no longer holds its image (its write failed
        because the task that took it over fenced the writer off): that task discards and
        rewrites this store itself, and the location may by now name its data.
        """
        if self._in_turn is not None:
            await self._in_turn.abandon(ctx, error)
        if isinstance(error, LockLost) or await ctx.taken_over():
            return
        store = ctx.stores[self.store]
        url = ctx.written.pop(self.store, None) or self._url
        if url is not None:
            await store.delete(url)
            await ctx.images.remove_location(ctx.image_id, url)
        elif self._writing:
            await store.discard(ctx.image_id)
        self._url, self._writing = None, False
        await ctx.images.remove_from_list(ctx.image_id, IMPORTING_TO_STORES, [self.store])
        if url is not None:
            await ctx.announce(EventType.IMAGE_UPDATE, f"revert:{self.name}")


def stores_in_turn(stores: list[str], activation: Activation) -> list[StoreStep]:
    """The steps of ``stores`` written one at a time, in order (see :mod:`flows.steps.in_turn`)."""
    in_turn = WritesInTurn()
    steps = [StoreStep(store, activation=activation, in_turn=in_turn) for store in stores]
    for step in steps:
        in_turn.join(step)
    return steps


def store_group(steps: list[StoreStep]) -> Parallel[ImportContext]:
    """The store steps ``steps`` running at once, fed by one read of the data."""
    names = [step.store for step in steps]
    return Parallel(steps, scope=lambda ctx: _shared_read(ctx, names))


@contextlib.asynccontextmanager
async def _shared_read(ctx: ImportContext, names: list[str]) -> AsyncIterator[None]:
    """One read of ``ctx.data_path`` fanned out to the stores ``names`` while they write.

    A store the conversion already wrote into only publishes its file: it reads nothing.
    """
    assert ctx.data_path is not None
    readers = [name for name in names if name not in ctx.prewritten]
    source = await asyncio.to_thread(SparseFileReader, ctx.data_path)
    ctx.fanout = FanOut(source, readers, ctx.settings.chunk_size)
    try:
        yield
    finally:
        ctx.fanout = None
        source.close()
