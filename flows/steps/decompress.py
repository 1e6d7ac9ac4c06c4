"""Step ``decompress``: unpack gzip/xz/zip bits before they are inspected."""

from __future__ import annotations

import asyncio
import logging

from flows.context import ImportContext
from flows.decompression import decompress, detect_compression
from flows.errors import LockLost
from flows.threads import run_stoppable

log = logging.getLogger(__name__)

#: Suffix of the decompressed copy in the staging area.
SUFFIX = ".decompressed"


class DecompressStep:
    """Replaces compressed staged bits by their content; uncompressed bits pass untouched."""

    name = "decompress"

    async def execute(self, ctx: ImportContext) -> None:
        """Detect compression by magic bytes and decompress into the staging area."""
        assert ctx.staged_path is not None
        source = ctx.staged_path
        kind = await asyncio.to_thread(detect_compression, source)
        if kind is None:
            return
        dest = ctx.staging_file(SUFFIX)
        cap = ctx.settings.safety.image_size_cap
        ctx.progress.phase = f"decompressing {kind}"
        size = await run_stoppable(lambda stop: decompress(source, dest, kind, cap, stop))
        log.info("decompressed %s image: %d bytes", kind, size)
        ctx.staged_path = dest
        ctx.data_path = dest

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Remove the decompressed copy."""
        if isinstance(error, LockLost):
            return  # the staging files now belong to the task holding the image
        ctx.staging_file(SUFFIX).unlink(missing_ok=True)
