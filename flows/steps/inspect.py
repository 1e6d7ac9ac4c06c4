"""Step ``inspect``: the format inspector, then qemu-img's own view as a cross-check."""

from __future__ import annotations

import asyncio
import logging

from flows.context import ImportContext
from flows.errors import SafetyRefusal
from flows.inspector import inspect_file, qemu_format
from flows.qemu import QemuLimits, qemu_info

log = logging.getLogger(__name__)


class InspectStep:
    """Refuses unsafe or mislabelled images before qemu-img converts anything.

    The pure-Python inspector decides; only an image it accepted is shown to ``qemu-img
    info`` (with ``-f`` and resource limits), whose answer must agree: no backing file, no
    data file, the same virtual size. A raw image has no header for qemu-img to read — its
    answer would be the file's size and nothing else —, so raw images are not shown to it
    (a subprocess saved on every raw import).
    """

    name = "inspect"

    async def execute(self, ctx: ImportContext) -> None:
        """Inspect the staged bits as the declared ``disk_format``."""
        assert ctx.staged_path is not None and ctx.image is not None
        declared = ctx.image.disk_format or "raw"
        policy = ctx.settings.safety
        ctx.progress.phase = "inspecting"
        found = await asyncio.to_thread(inspect_file, ctx.staged_path, declared, policy)
        ctx.source_format = declared
        ctx.virtual_size = found.virtual_size
        if declared == "raw":
            log.info("inspected: raw, virtual size %d", found.virtual_size)
            return
        info = await qemu_info(
            ctx.staged_path,
            qemu_format(declared),
            QemuLimits(policy.qemu_info_cpu_seconds, policy.qemu_info_address_space),
        )
        if info.backing_file or info.data_file:
            raise SafetyRefusal(
                "malformed",
                f"qemu-img sees a backing or data file ({info.backing_file or info.data_file!r})"
                " that the inspector did not: the image is refused",
            )
        if declared not in ("iso",) and info.virtual_size != found.virtual_size:
            raise SafetyRefusal(
                "malformed",
                f"the header says the virtual size is {found.virtual_size} bytes but qemu-img "
                f"reads {info.virtual_size}: the image is refused",
            )
        ctx.source_format = declared
        ctx.virtual_size = found.virtual_size
        log.info("inspected: %s, virtual size %d", declared, found.virtual_size)

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Nothing to undo: inspection only reads."""
