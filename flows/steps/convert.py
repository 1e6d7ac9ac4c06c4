"""Step ``convert``: qemu-img convert to the target format, inspect the result, start hashing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from flows.context import ImportContext
from flows.errors import LockLost
from flows.hashing import compute_data_facts
from flows.inspector import inspect_file, qemu_format
from flows.qemu import QemuLimits, qemu_convert
from flows.staging_space import check_staging_space

log = logging.getLogger(__name__)


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
                progress=self._reporter(ctx),
            )
            ctx.progress.converting = None
            # Inspect our own output too: a format hidden inside the source shows up here.
            result = await asyncio.to_thread(inspect_file, output, target_format, policy)
            ctx.data_path = output
            ctx.virtual_size = result.virtual_size
            log.debug("converted %s to %s", ctx.source_format, target_format)
        else:
            ctx.data_path = ctx.staged_path
        assert ctx.data_path is not None and ctx.virtual_size is not None
        ctx.data_facts = asyncio.create_task(
            compute_data_facts(
                ctx.data_path, ctx.virtual_size, ctx.settings.chunk_size, ctx.observer
            ),
            name=f"hash-{ctx.image_id}",
        )

    def _reporter(self, ctx: ImportContext) -> Callable[[float], None]:
        """qemu-img's percent to the task message, and as bytes of the virtual size."""
        total = ctx.virtual_size
        ctx.observer.phase_started(self.name, total)
        done = 0

        def report(percent: float) -> None:
            nonlocal done
            ctx.progress.converting = percent
            now = int((total or 0) * percent / 100)
            if now > done:
                ctx.observer.phase_advanced(self.name, now - done)
                done = now

        return report

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Stop hashing and remove the conversion's output."""
        if ctx.data_facts is not None:
            ctx.data_facts.cancel()
            await asyncio.gather(ctx.data_facts, return_exceptions=True)
            ctx.data_facts = None
        if isinstance(error, LockLost):
            return  # the staging files now belong to the task holding the image
        if ctx.settings.convert_to:
            ctx.staging_file(f".{ctx.settings.convert_to}").unlink(missing_ok=True)
