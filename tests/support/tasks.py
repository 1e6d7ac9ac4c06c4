"""The test's own view of a daemon test's records: open them, enqueue, wait for an ending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from flows.records import TaskRecord
from flows.request import ImportRequest
from flows.states import is_terminal
from tests.support.enqueue import enqueue
from worker.config.settings import load_settings
from worker.db.catalog import NewImage
from worker.tasks.services import Services

#: The stores of tests/support/workers.py's default configuration.
STORES = ["central", "dcn0"]


@asynccontextmanager
async def opened(config: Path) -> AsyncIterator[Services]:
    """The records of the workers' configuration (what an API layer holds)."""
    services = await Services.open(load_settings(str(config), environ={}))
    try:
        yield services
    finally:
        await services.close()


async def enqueue_download(
    services: Services, uri: str, stores: list[str] = STORES, disk_format: str = "raw"
) -> tuple[str, str]:
    """Record an image and enqueue its web-download from ``uri``; return (image, task)."""
    image = await services.records.catalog.create(
        NewImage(owner=None, name="it", disk_format=disk_format, container_format="bare")
    )
    request = ImportRequest(
        method="web-download", uri=uri, stores=tuple(stores), all_stores_must_succeed=True
    )
    task_id = await enqueue(services, image.id, request)
    return image.id, task_id


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.25
) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def terminal(services: Services, task_id: str, timeout: float = 120) -> TaskRecord:
    """The task once it has ended."""

    async def done() -> bool:
        return is_terminal((await services.tasks.get(task_id)).status)

    await until(done, timeout, f"task {task_id}")
    return await services.tasks.get(task_id)
