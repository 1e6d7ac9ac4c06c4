"""Step ``convert``: qemu-img convert to the target format, inspect the result, start hashing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from flows.context import ImportContext
from flows.errors import ConversionFailed, LockLost
from flows.events import EventType
from flows.hashing import start_hashing
from flows.inspector import inspect_file, qemu_format
from flows.qemu import QemuLimits, qemu_convert
from flows.staging_space import check_staging_space
from flows.stores.base import InPlaceWritable

log = logging.getLogger(__name__)

#: The container format of converted data (Glance's image_conversion sets it).
BARE = "bare"


class ConvertStep:
    """Converts the staged bits when their format differs from the configured target.

    Whatever it produces (or the staged file, when nothing needs converting) is what every
    store receives; hashing of that data starts here, in the background, so it overlaps the
    store writes and happens once per import.

    When the first target store keeps its images as local files, qemu-img writes straight
    into that store's hidden temporary file (``ctx.prewritten``), which the store's own step
    publishes: the converted data is written once, where it stays. The hashes are computed
    from those very bytes, and the other stores are written from them.
    """

    name = "convert"

    async def execute(self, ctx: ImportContext) -> None:
        """Convert if needed, then start computing the stored data's hashes."""
        assert ctx.staged_path is not None and ctx.source_format is not None
        target_format = ctx.settings.convert_to
        if target_format and target_format != ctx.source_format:
            output = await _convert(ctx, target_format)
            # Inspect our own output too: a format hidden inside the source shows up here.
            policy = ctx.settings.safety
            result = await asyncio.to_thread(inspect_file, output, target_format, policy)
            ctx.data_path = output
            ctx.virtual_size = result.virtual_size
            await _record_formats(ctx, target_format)
            log.debug("converted %s to %s", ctx.source_format, target_format)
        else:
            ctx.data_path = ctx.staged_path
        assert ctx.data_path is not None and ctx.virtual_size is not None
        ctx.data_facts = await start_hashing(
            ctx.data_path,
            ctx.virtual_size,
            ctx.settings.chunk_size,
            f"hash-{ctx.image_id}",
            ctx.observer,
        )
        # The data the stores receive is ready (Glance's conversion plugin saves the image
        # here, converting or not).
        await ctx.announce(EventType.IMAGE_UPDATE, "data")

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Stop hashing, put the formats back and remove the conversion's output."""
        if ctx.data_facts is not None:
            ctx.data_facts.cancel()
            await asyncio.gather(ctx.data_facts, return_exceptions=True)
            ctx.data_facts = None
        if isinstance(error, LockLost):
            return  # the staging files and the record now belong to the task holding the image
        if await _restore_formats(ctx):
            await ctx.announce(EventType.IMAGE_UPDATE, f"revert:{self.name}")
        await asyncio.to_thread(remove_prewritten, ctx)
        if ctx.settings.convert_to:
            ctx.staging_file(f".{ctx.settings.convert_to}").unlink(missing_ok=True)


async def _convert(ctx: ImportContext, target_format: str) -> Path:
    """Run qemu-img into the first store's file when it can take it, else into staging.

    qemu-img failing while it writes into a store may be the store's fault (a full or broken
    disk), not the image's: the conversion is run again into the staging area, and the
    store's own step then meets its problem (with failure allowed, the others go on).
    """
    in_place = await _reserve_in_first_store(ctx)
    if in_place is not None:
        store, partial = in_place
        try:
            await _qemu_convert(ctx, target_format, partial)
        except ConversionFailed as exc:
            log.warning("converting into store %s failed (%s); converting into staging", store, exc)
        else:
            ctx.prewritten[store] = partial
            return partial
    assert ctx.staged_path is not None
    output = ctx.staging_file(f".{target_format}")
    staged_bytes = (await asyncio.to_thread(ctx.staged_path.stat)).st_size
    # The output holds about as much data as the input (holes stay holes).
    check_staging_space(ctx.settings, staged_bytes, before="conversion")
    await _qemu_convert(ctx, target_format, output)
    return output


async def _reserve_in_first_store(ctx: ImportContext) -> tuple[str, Path] | None:
    """The first target store and a hidden file of its own, when it keeps local files."""
    first = ctx.targets[0] if ctx.targets else None
    store = ctx.stores.get(first) if first is not None else None
    if first is None or not isinstance(store, InPlaceWritable):
        return None
    await ctx.assert_holds()
    try:
        return first, await asyncio.to_thread(store.reserve, ctx.image_id)
    except OSError as exc:
        # Its own step will meet (and report) the same problem; convert into staging.
        log.info("store %s cannot take the conversion in place: %s", first, exc)
        return None


async def _qemu_convert(ctx: ImportContext, target_format: str, output: Path) -> None:
    assert ctx.staged_path is not None and ctx.source_format is not None
    policy = ctx.settings.safety
    ctx.progress.phase = "converting"
    await qemu_convert(
        ctx.staged_path,
        qemu_format(ctx.source_format),
        output,
        qemu_format(target_format),
        QemuLimits(policy.qemu_convert_cpu_seconds, policy.qemu_convert_address_space),
        progress=_reporter(ctx),
    )


def _reporter(ctx: ImportContext) -> Callable[[float], None]:
    """qemu-img's percent as bytes of the virtual size."""
    total = ctx.virtual_size
    ctx.observer.phase_started(ConvertStep.name, total)
    done = 0

    def report(percent: float) -> None:
        nonlocal done
        now = int((total or 0) * percent / 100)
        if now > done:
            ctx.observer.phase_advanced(ConvertStep.name, now - done)
            done = now

    return report


def remove_prewritten(ctx: ImportContext) -> None:
    """Remove converted files that no store published (blocking)."""
    for partial in ctx.prewritten.values():
        partial.unlink(missing_ok=True)
    ctx.prewritten.clear()


async def _record_formats(ctx: ImportContext, target_format: str) -> None:
    """Say what the stores will hold, as Glance's image_conversion does after converting.

    ``disk_format`` becomes the target format and ``container_format`` ``bare``; ``size`` is
    recorded with the hashes (the converted data's) before the image goes active.
    """
    await ctx.assert_holds()
    ctx.converted_to = target_format
    await ctx.images.set_formats(ctx.image_id, target_format, BARE)


async def _restore_formats(ctx: ImportContext) -> bool:
    """Put back the formats the image had before this conversion recorded its own.

    Tell whether there was anything to put back.
    """
    if ctx.converted_to is None or ctx.image is None:
        return False
    original = ctx.image
    await ctx.images.set_formats(
        ctx.image_id, original.disk_format or "", original.container_format or ""
    )
    ctx.converted_to = None
    return True
