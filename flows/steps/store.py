"""Step ``store:NAME``: write the data to one store and keep the image record true."""

from __future__ import annotations

import asyncio
import logging

from flows.context import ImportContext
from flows.errors import LockLost, StoreWriteFailed
from flows.records import FAILED_IMPORT, IMPORTING_TO_STORES
from flows.sparse import SparseFileReader
from flows.states import ImageStatus

log = logging.getLogger(__name__)


class StoreStep:
    """Writes to one target store.

    When the write ends, the store leaves ``os_glance_importing_to_stores``; a failed write
    joins ``os_glance_failed_import`` and, if failure is allowed, the flow goes on. The image
    goes ``active`` here when ``set_active`` says so (never for copy-image), with its hashes
    recorded first.
    """

    def __init__(self, store: str, *, set_active: bool) -> None:
        self.store = store
        self.set_active = set_active
        self.name = f"store:{store}"

    async def execute(self, ctx: ImportContext) -> None:
        """Write, record the location, update the lists, maybe activate."""
        await ctx.assert_holds()
        try:
            await self._write(ctx)
        except (StoreWriteFailed, OSError) as exc:
            await self._failed(ctx, exc)
            if ctx.request.allow_failure:
                return
            raise
        await ctx.images.remove_from_list(ctx.image_id, IMPORTING_TO_STORES, [self.store])
        if self.set_active and not ctx.activated:
            await _activate(ctx)

    async def _write(self, ctx: ImportContext) -> None:
        assert ctx.data_path is not None
        store = ctx.stores[self.store]
        ctx.progress.phase = f"writing to {self.store}"

        def count(written: int, skipped: int) -> None:
            ctx.progress.add_copied(written + skipped)
            ctx.observer.phase_advanced(self.name, written + skipped)
            if written:
                ctx.observer.bytes_written(self.store, written)
            if skipped:
                ctx.observer.bytes_skipped(self.store, skipped)

        reader = await asyncio.to_thread(SparseFileReader, ctx.data_path)
        ctx.observer.phase_started(self.name, reader.size)
        stored = await store.add(ctx.image_id, reader, count)
        try:
            await ctx.assert_holds()
            await ctx.images.add_location(ctx.image_id, stored.url, self.store)
        except BaseException:
            # Not recorded (the lock was lost, the image deleted meanwhile, the database
            # failed): no location will ever name this data, so it goes now.
            await store.delete(stored.url)
            raise
        ctx.written[self.store] = stored.url
        ctx.observer.store_write(self.store, "success")
        log.info(
            "stored in %s: %d bytes written, %d zero bytes skipped",
            self.store,
            stored.bytes_written,
            stored.bytes_skipped,
        )

    async def _failed(self, ctx: ImportContext, exc: BaseException) -> None:
        detail = str(exc) if isinstance(exc, StoreWriteFailed) else f"store {self.store!r}: {exc}"
        log.warning("write to store %s failed: %s", self.store, detail)
        ctx.failed[self.store] = detail
        ctx.observer.store_write(self.store, "failure")
        await ctx.images.remove_from_list(ctx.image_id, IMPORTING_TO_STORES, [self.store])
        await ctx.images.add_to_list(ctx.image_id, FAILED_IMPORT, [self.store])

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Delete the data this step wrote and forget its location.

        Not after :class:`LockLost`: the task that took the image over discards and rewrites
        this store itself, and the location may by now name its data.
        """
        if isinstance(error, LockLost):
            return
        url = ctx.written.pop(self.store, None)
        if url is not None:
            await ctx.stores[self.store].delete(url)
            await ctx.images.remove_location(ctx.image_id, url)
        await ctx.images.remove_from_list(ctx.image_id, IMPORTING_TO_STORES, [self.store])


async def _activate(ctx: ImportContext) -> None:
    """Record the stored data's facts, then set the image active."""
    assert ctx.data_facts is not None
    facts = await ctx.data_facts
    await ctx.assert_holds()
    await ctx.images.record_data(ctx.image_id, facts)
    await ctx.images.set_status(ctx.image_id, ImageStatus.ACTIVE)
    ctx.activated = True
