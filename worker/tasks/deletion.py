"""Running a delete task: remove the data of the locations it lists, then end it.

The record changed when the deletion was asked for (:mod:`worker.db.catalog`); this is the
durable half. Every listed location's data is removed from its store (a file unlinked; an
RBD image's snapshot unprotected and removed, then the image) and the location marked
``deleted``. A location whose data cannot be removed now — a store down, an RBD image with
clones — leaves the task ``pending`` with the reason in its message, and the sweeper
publishes it again later: deletion is retried until done, never forced, never forgotten.
"""

from __future__ import annotations

import asyncio
import logging

from flows.errors import LockLost
from flows.states import AttemptStatus, is_terminal
from worker.db.deletions import DeleteTaskInput, DoomedLocation
from worker.db.tasks import TaskEnd
from worker.tasks.runner import TaskOutcome
from worker.tasks.services import Services
from worker.tasks.staging import remove_image_staging

log = logging.getLogger(__name__)


async def run_delete_task(services: Services, task_id: str) -> TaskOutcome:
    """Remove what task ``task_id`` lists; record success, or defer with the reasons."""
    task = await services.tasks.get(task_id)
    if is_terminal(task.status):
        return TaskOutcome(AttemptStatus(task.status), task.message, "duplicate", ran=False)
    try:
        await services.tasks.claim(task_id, services.worker_id)
    except LockLost as lost:
        return TaskOutcome(AttemptStatus.FAILURE, str(lost), lost.reason, ran=False)
    try:
        doomed = DeleteTaskInput.from_dict(task.input)
    except ValueError as unreadable:
        message = f"task {task_id}: {unreadable}; nothing was removed"
        await services.tasks.finish(task_id, TaskEnd.failure(message))
        return TaskOutcome(AttemptStatus.FAILURE, message, "bad_input")
    image_id = doomed.image_id
    # A retry skips what an earlier attempt already removed.
    urls = [location.url for location in doomed.locations]
    pending = await services.records.deletions.still_pending(image_id, urls)
    problems = [
        problem
        for problem in [
            await _remove(services, image_id, location)
            for location in doomed.locations
            if location.url in pending
        ]
        if problem is not None
    ]
    if doomed.staging:
        await asyncio.to_thread(remove_image_staging, services.settings.staging.dir, image_id)
    if problems:
        message = "will retry: " + "; ".join(problems)
        await services.tasks.requeue(task_id, message)
        log.warning("delete task %s: %s", task_id, message)
        return TaskOutcome(AttemptStatus.DEFERRED, message, "deferred", transient=True)
    await services.tasks.finish(task_id, TaskEnd.success({"image_id": image_id, "deleted": urls}))
    return TaskOutcome(AttemptStatus.SUCCESS, f"deleted {len(urls)} location(s)")


async def _remove(services: Services, image_id: str, location: DoomedLocation) -> str | None:
    """Remove one location's data; return why it could not be, or None when it is gone."""
    deletions = services.records.deletions
    store = services.stores.get(location.store)
    if store is None:
        return f"store {location.store!r} is not configured on worker {services.worker_id}"
    if await deletions.url_in_use(image_id, location.url):
        log.info("%s is in use by a live location again; its data is kept", location.url)
    else:
        try:
            await store.delete(location.url)
        except Exception as exc:
            return str(exc) or type(exc).__name__
    await deletions.forget_location(image_id, location.url)
    log.info("removed %s from %s", location.url, location.store)
    return None
