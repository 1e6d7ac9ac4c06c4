"""Step ``lock``: assert this task holds the image, clear a dead attempt, announce the targets.

The runner claims the task and holds its lease (the heartbeat) around the whole flow; this
step checks that the lock it was given is still this task's before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from flows.context import ImportContext
from flows.errors import LockLost, StoreError
from flows.events import EventType
from flows.preconditions import check_can_start
from flows.records import (
    IMPORTING_TO_STORES,
    ImageFormats,
    ImageRecord,
)

log = logging.getLogger(__name__)


class LockStep:
    """Checks this task's hold on the image and clears what a dead attempt left behind."""

    name = "lock"

    def __init__(self, targets: list[str]) -> None:
        self._targets = targets

    async def execute(self, ctx: ImportContext) -> None:
        """Check the lock and status, claim the task, set the two lists and the status (one
        transaction); clean up what a dead attempt left; announce it."""

        def may_start(image: ImageRecord) -> None:
            check_can_start(ctx.request, image, resuming=True)

        image = await ctx.images.begin_import(
            ctx.hold, self._targets, importing=not ctx.is_copy, check=may_start
        )
        if ctx.lease is not None:
            ctx.lease.confirmed()
        ctx.targets = self._targets
        ctx.image = await _restore_requested_formats(ctx, image)
        await _clear_previous_attempt(ctx, image)
        await ctx.announce(EventType.IMAGE_UPDATE, "start")

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Take every unfinished target off the importing list."""
        if isinstance(error, LockLost):
            return  # the lists now belong to the task holding the image
        if ctx.targets:
            await ctx.images.remove_from_list(ctx.image_id, IMPORTING_TO_STORES, ctx.targets)


async def _restore_requested_formats(ctx: ImportContext, image: ImageRecord) -> ImageRecord:
    """The image with the formats it was imported as; a dead attempt's conversion undone.

    An attempt that died after converting left ``disk_format``/``container_format`` saying
    what its (now discarded) stores held; the bits are inspected again as requested.
    """
    wanted = ctx.requested_formats
    if ctx.is_copy or wanted is None or wanted == ImageFormats.of(image):
        return image
    log.info(
        "restoring formats %s/%s left converted by an earlier attempt",
        wanted.disk_format,
        wanted.container_format,
    )
    await ctx.images.set_formats(
        ctx.image_id, wanted.disk_format or "", wanted.container_format or ""
    )
    return replace(image, disk_format=wanted.disk_format, container_format=wanted.container_format)


async def _clear_previous_attempt(ctx: ImportContext, image: ImageRecord) -> None:
    """Remove data an earlier attempt of this import wrote to the target stores."""
    for location in image.locations:
        if location.store in ctx.targets:
            log.info("removing %s left by an earlier attempt", location.url)
            store = ctx.stores.get(location.store)
            if store is not None:
                await store.delete(location.url)
            await ctx.images.remove_location(ctx.image_id, location.url)
    for name in ctx.targets:
        try:
            await ctx.stores[name].discard(ctx.image_id)
        except StoreError as exc:
            # An unreachable store must not fail the whole import here: its own write step
            # fails (or, with allow-failure, is skipped) with the same reason.
            log.warning("could not clear %s before writing: %s", name, exc)
