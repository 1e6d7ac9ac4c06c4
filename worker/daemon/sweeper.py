"""Publishing delete tasks again until they are done (every worker runs one sweeper).

A delete task that could not finish (a store down, an RBD image with clones) is left
``pending``; one whose worker died stays ``processing`` without a heartbeat; one created while
the broker was down was never published. Every ``sweep_seconds`` the sweeper finds those
whose turn has come and publishes each once — the compare-and-swap on the task's
``updated_at`` lets exactly one worker of the pool do it — and reports how many deletions
are pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from flows.background import cancel_and_wait
from flows.errors import TransientError
from flows.requester import RequestContext
from flows.states import TaskType
from worker.config.settings import WorkerSettings
from worker.daemon.client import TaskPublisher
from worker.daemon.messages import TaskMessage
from worker.db.deletions import SqlDeletions

log = logging.getLogger(__name__)


class DeleteSweeper:
    """Owns the sweeping loop: ``async with DeleteSweeper(...):`` starts and stops it."""

    def __init__(
        self,
        deletions: SqlDeletions,
        publisher: TaskPublisher,
        settings: WorkerSettings,
        report_pending: Callable[[int], None],
    ) -> None:
        self._deletions = deletions
        self._publisher = publisher
        self._settings = settings
        self._report_pending = report_pending
        self._loop: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DeleteSweeper:
        self._loop = asyncio.create_task(self._run(), name="delete-sweeper")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(self._loop)
        self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except TransientError as exc:
                log.warning("sweeping delete tasks: %s; trying again later", exc)
            except Exception:
                log.warning("sweeping delete tasks failed; trying again later", exc_info=True)
            await asyncio.sleep(self._settings.sweep_seconds)

    async def sweep_once(self) -> int:
        """Publish every due delete task once; return how many this worker published."""
        due = await self._deletions.due(
            retry_after=timedelta(seconds=self._settings.delete_retry_seconds)
        )
        published = 0
        for task in due:
            if not await self._deletions.take_turn(task.id, task.updated_at):
                continue  # another worker's sweeper took this one
            message = TaskMessage.deletion(
                task.id,
                str(task.image_id),
                TaskType(task.type),
                RequestContext(
                    project_id=task.owner, user_id=task.user_id, request_id=task.request_id
                ),
            )
            await self._publisher.publish(message)
            published += 1
            log.info("delete task %s published again (%s)", task.id, task.message or "never run")
        self._report_pending(await self._deletions.pending_count())
        return published
