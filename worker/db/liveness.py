"""Is a task still alive? The one rule every holder of an image or a task is judged by.

A task holds what it holds (its image's import lock, a worker's claim on it) while it has not
ended and its ``updated_at`` is within the lease: its worker heartbeats it more often than
that. A ``pending`` task (enqueued, no worker yet) gets twice the lease, as Glance gives a
pending task's lock twice as long: a queue backlog must not look like a dead worker.

Taking over an import lock (:mod:`worker.db.locks`), claiming a task another worker claimed
(:func:`worker.db.tasks.claim_task`), refusing to remove a store's copy while an import holds
the image (:mod:`worker.db.catalog`) and publishing a stalled delete task again
(:mod:`worker.db.deletions`) all ask :func:`alive`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.states import TaskStatus
from worker.db.models import Task, utcnow

#: How many leases a ``pending`` task keeps what it holds.
PENDING_LEASES = 2


def alive(lease: timedelta, now: datetime | None = None) -> ColumnElement[bool]:
    """The SQL condition on ``tasks``: the task is unfinished and heartbeated within ``lease``."""
    now = now or utcnow()
    return or_(
        and_(Task.status == TaskStatus.PROCESSING, Task.updated_at >= now - lease),
        and_(Task.status == TaskStatus.PENDING, Task.updated_at >= now - PENDING_LEASES * lease),
    )


async def is_alive(session: AsyncSession, task_id: str, lease: timedelta) -> bool:
    """In ``session``: whether task ``task_id`` is alive (a task that does not exist is not)."""
    found = await session.scalar(select(Task.id).where(Task.id == task_id, alive(lease)))
    return found is not None
