"""Background asyncio tasks owned by one scope: started there, cancelled and awaited there."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has stopped.

    Its cancellation is absorbed; an error it had already raised is raised here.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
