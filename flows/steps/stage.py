"""Step ``stage``: bring the bits into ``<staging>/<image_id>`` by the request's method."""

from __future__ import annotations

import asyncio

from flows.context import ImportContext
from flows.errors import LockLost
from flows.events import EventType
from flows.local_io import LocalPlace, failing_at
from flows.request import COPY_IMAGE, GLANCE_DIRECT
from flows.sources.copy_image import copy_to_staging, pick_source
from flows.sources.glance_direct import staged_upload
from flows.sources.web_download import download
from flows.staging_space import check_staging_space


class StageStep:
    """Downloads, accepts an upload, or copies from a store into the staging area."""

    name = "stage"

    async def execute(self, ctx: ImportContext) -> None:
        """Stage the bits and remember where they are."""
        dest = ctx.staging_file()
        with failing_at(LocalPlace(ctx.settings.staging_dir), "take the image"):
            await asyncio.to_thread(ctx.settings.staging_dir.mkdir, parents=True, exist_ok=True)
        ctx.progress.phase = "staging"
        method = ctx.request.method

        def count(nbytes: int) -> None:
            ctx.observer.phase_advanced(self.name, nbytes)
            ctx.observer.bytes_downloaded(method, nbytes)

        def sized(total: int | None) -> None:
            ctx.observer.phase_started(self.name, total)

        if method == GLANCE_DIRECT:
            # The bits were uploaded before the flow: nothing moves here.
            await asyncio.to_thread(staged_upload, dest, ctx.image_id)
        elif (prefetch := ctx.prefetch) is not None and prefetch.serves(ctx.request):
            # Downloaded while the command was loading (its space was checked as it began).
            await prefetch.adopt(dest, count, sized)
        else:
            check_staging_space(ctx.settings)
            if method == COPY_IMAGE:
                assert ctx.image is not None
                source = pick_source(ctx.image, ctx.stores, ctx.targets)
                sized(ctx.image.size)
                await copy_to_staging(
                    ctx.stores[source.store], source, dest, ctx.settings.chunk_size, count
                )
            else:
                assert ctx.request.uri is not None
                await download(
                    ctx.request.uri,
                    dest,
                    ctx.settings.safety,
                    ctx.request.checksum,
                    count,
                    announced=sized,
                )
        ctx.staged_path = dest
        ctx.data_path = dest
        if ctx.is_copy:
            # The data the stores receive is ready (Glance's copy plugin saves the image here).
            await ctx.announce(EventType.IMAGE_UPDATE, "data")

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Remove downloaded or copied bits; an upload stays for a retry (the runner decides)."""
        if isinstance(error, LockLost):
            return  # the staging files now belong to the task holding the image
        if ctx.request.method != GLANCE_DIRECT:
            ctx.staging_file().unlink(missing_ok=True)
