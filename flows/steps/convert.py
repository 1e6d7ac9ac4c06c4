"""Step ``convert``: qemu-img convert to the target format, inspect the result, start hashing."""

from __future__ import annotations

import asyncio
import logging

from flows.context import ImportContext
from flows.errors import LockLost
from flows.hashing import compute_data_facts
from flows.inspector import inspect_file, qemu_format
from flows.qemu import QemuLimits, qemu_convert
from flows.staging_space import check_staging_space

log = logging.getLogger(__name__)

#: The container format of converted data (Glance's image_conversion sets it).
BARE = "bare"


class ConvertStep:
    """Converts the staged bits when their format differs from the configured target.

    Whatever it produces (or the staged file, when nothing needs converting) is what every
    store receives; hashing of that data starts here, in the background, so it overlaps the
    store writes and happens once per import.
    """

    name = "convert"

    async def execute(self, ctx: ImportContext) -> None:
        """Convert if needed, then start computing the stored data's hashes."""
        assert ctx.staged_path is not None and ctx.source_format is not None
        target_format = ctx.settings.convert_to
        if target_format and target_format != ctx.source_format:
            output = ctx.staging_file(f".{target_format}")
            policy = ctx.settings.safety
            staged_bytes = (await asyncio.to_thread(ctx.staged_path.stat)).st_size
            # The output holds about as much data as the input (holes stay holes).
            check_staging_space(ctx.settings, staged_bytes, before="conversion")
            ctx.progress.phase = "converting"
            await qemu_convert(
                ctx.staged_path,
                qemu_format(ctx.source_format),
                output,
                qemu_format(target_format),
                QemuLimits(policy.qemu_convert_cpu_seconds, policy.qemu_convert_address_space),
                progress=lambda percent: setattr(ctx.progress, "converting", percent),
            )
            ctx.progress.converting = None
            # Inspect our own output too: a format hidden inside the source shows up here.
            result = await asyncio.to_thread(inspect_file, output, target_format, policy)
            ctx.data_path = output
            ctx.virtual_size = result.virtual_size
            await _record_formats(ctx, target_format)
            log.debug("converted %s to %s", ctx.source_format, target_format)
        else:
            ctx.data_path = ctx.staged_path
        assert ctx.data_path is not None and ctx.virtual_size is not None
        ctx.data_facts = asyncio.create_task(
            compute_data_facts(ctx.data_path, ctx.virtual_size, ctx.settings.chunk_size),
            name=f"hash-{ctx.image_id}",
        )

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Stop hashing and remove the conversion's output."""
        if ctx.data_facts is not None:
            ctx.data_facts.cancel()
            await asyncio.gather(ctx.data_facts, return_exceptions=True)
            ctx.data_facts = None
        if isinstance(error, LockLost):
            return  # the staging files and the record now belong to the task holding the image
        await _restore_formats(ctx)
        if ctx.settings.convert_to:
            ctx.staging_file(f".{ctx.settings.convert_to}").unlink(missing_ok=True)


async def _record_formats(ctx: ImportContext, target_format: str) -> None:
    """Say what the stores will hold, as Glance's image_conversion does after converting.

    ``disk_format`` becomes the target format and ``container_format`` ``bare``; ``size`` is
    recorded with the hashes (the converted data's) before the image goes active.
    """
    await ctx.assert_holds()
    ctx.converted_to = target_format
    await ctx.images.set_formats(ctx.image_id, target_format, BARE)


async def _restore_formats(ctx: ImportContext) -> None:
    """Put back the formats the image had before this conversion recorded its own."""
    if ctx.converted_to is None or ctx.image is None:
        return
    original = ctx.image
    await ctx.images.set_formats(
        ctx.image_id, original.disk_format or "", original.container_format or ""
    )
    ctx.converted_to = None
