"""Taking an image's import lock (``os_glance_import_task``) for a new task.

As in Glance, whoever starts an import takes the lock by compare-and-swap before the task can
run. A lock held by a finished task, by a task that no longer exists, or by a task that has not
heartbeated within the lease is taken over; the old task is then marked failed
"lock preempted" so that its worker, if it still runs, stops at its next write.
"""

from __future__ import annotations

import logging

from flows.errors import ImageStateConflict, NotFound
from flows.states import is_terminal
from worker.db.images import SqlImageRepository
from worker.db.tasks import SqlTaskRepository, TaskEnd

log = logging.getLogger(__name__)

#: Compare-and-swap attempts before giving up on a lock that keeps changing hands.
ATTEMPTS = 5


async def acquire_import_lock(
    images: SqlImageRepository,
    tasks: SqlTaskRepository,
    image_id: str,
    task_id: str,
    lease_seconds: float,
) -> str | None:
    """Make ``task_id`` the holder of ``image_id``'s lock; return the task it preempted, if any.

    Raises :class:`ImageStateConflict` while a live task holds the lock.
    """
    for _ in range(ATTEMPTS):
        holder = await images.lock_holder(image_id)
        if holder is None or holder == task_id:
            if await images.take_lock(image_id, task_id, holder):
                return None
            continue
        if not await _is_dead(tasks, holder, lease_seconds):
            raise ImageStateConflict(
                f"image {image_id} is being imported by task {holder}; wait for it to finish "
                "(or for its lease to expire if its worker died)"
            )
        if await images.take_lock(image_id, task_id, holder):
            await _preempt(tasks, holder)
            log.warning("import lock of image %s taken over from task %s", image_id, holder)
            return holder
    raise ImageStateConflict(f"the import lock of image {image_id} keeps changing; try again")


async def _is_dead(tasks: SqlTaskRepository, holder: str, lease_seconds: float) -> bool:
    try:
        task = await tasks.get(holder)
    except NotFound:
        return True
    if is_terminal(task.status):
        return True
    return await tasks.is_stale(holder, lease_seconds)


async def _preempt(tasks: SqlTaskRepository, holder: str) -> None:
    try:
        await tasks.finish(
            holder,
            TaskEnd.failure("lock preempted: the task stopped heartbeating within its lease"),
        )
    except NotFound:
        return
