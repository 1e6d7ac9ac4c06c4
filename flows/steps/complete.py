"""Step ``complete``: make sure the import reached a store, record the facts, clear staging."""

from __future__ import annotations

import asyncio
import logging

from flows.context import ImportContext
from flows.errors import NoStoreSucceeded
from flows.local_io import LocalPlace, reason
from flows.steps.convert import remove_prewritten

log = logging.getLogger(__name__)


class CompleteStep:
    """Fails the flow when no store was written; otherwise removes the staged bits."""

    name = "complete"

    async def execute(self, ctx: ImportContext) -> None:
        """Check the outcome and clean the staging area."""
        if not ctx.written:
            failures = "; ".join(ctx.failed.values()) or "no target store"
            raise NoStoreSucceeded(f"none of the stores could be written: {failures}")
        if not ctx.is_copy and not ctx.activated:
            raise NoStoreSucceeded("the image was written but never activated")
        if ctx.data_facts is not None and not ctx.data_facts.done():
            await ctx.data_facts
        await asyncio.to_thread(remove_staging, ctx)
        await asyncio.to_thread(remove_prewritten, ctx)

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Nothing to undo: the steps before clean up after themselves."""


def remove_staging(ctx: ImportContext) -> None:
    """Remove every staging file of this image (original and conversion output).

    A staging area that will not let them go (read-only now, say) does not change how the
    import ended: the reason is logged and the files wait for the operator.
    """
    directory = ctx.settings.staging_dir
    try:
        if directory.is_dir():
            for path in directory.glob(f"{ctx.image_id}*"):
                path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning(
            "the staging files of image %s were not removed: %s",
            ctx.image_id,
            reason(LocalPlace(directory), exc),
        )
