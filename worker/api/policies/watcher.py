"""Re-reading the policy files while the API runs: the operator's edit applies, no restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from worker.api.policies.engine import PolicyEngine

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def watching(policy: PolicyEngine, every_seconds: float) -> AsyncIterator[None]:
    """For the duration, look for changed policy files every ``every_seconds``.

    The look stats and reads files, so it runs in a thread; requests keep the rules in
    force until a new set is complete.
    """
    task = asyncio.create_task(_watch(policy, every_seconds), name="policy-watcher")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _watch(policy: PolicyEngine, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await asyncio.to_thread(policy.refresh)
        except Exception:
            log.exception("looking for changed policy files failed; the rules stay as they are")
