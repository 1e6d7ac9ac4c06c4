"""Taking an image's import lock (``os_glance_import_task``) for a new task, in one transaction.

As in Glance, whoever starts an import takes the lock before the task can run. The image row
is locked and read, the caller's preconditions run on it, and the new task is recorded holding
the lock, all in one transaction. A lock held by a task that is no longer alive
(:mod:`worker.db.liveness`: finished, missing, or silent for the lease) is taken over, and the
old task ends failed "lock preempted" in the same transaction, so that its worker, if it still
runs, stops at its next write. While a live task holds the lock, nothing is recorded.

The caller's admission (:mod:`worker.db.usage`: the project's limits) runs in the same
transaction, just before the task is recorded: the task row and the lock are what the next
admission of the project counts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import ImageStateConflict, NotFound
from flows.records import IMPORT_LOCK, ImageRecord, TaskRecord
from worker.db.image_rows import load_image, loaded_property, snapshot
from worker.db.liveness import is_alive
from worker.db.models import ImageProperty, utcnow
from worker.db.repository import Repository
from worker.db.tasks import NewTask, TaskEnd, add_task, end_task
from worker.db.usage import Admission

log = logging.getLogger(__name__)

#: Transactions tried before giving up on a lock that keeps changing hands.
ATTEMPTS = 5
#: What a task whose lock was taken over ends with.
PREEMPTED = "lock preempted: the task stopped heartbeating within its lease"


class _LockMoved(Exception):
    """Another transaction changed the lock after this one read it: read it again."""


class SqlImportLocks(Repository):
    """The import lock of each image, taken for the task that will import it."""

    async def take_for_new_task(
        self,
        image_id: str,
        plan: Callable[[ImageRecord], NewTask],
        admission: Admission | None = None,
    ) -> TaskRecord:
        """Record the task ``plan`` makes of the image, holding the image's import lock.

        ``plan`` sees the image as locked for this transaction, may raise (the caller's
        preconditions) and returns the task; ``admission`` may refuse it then (a limit).
        Raises :class:`ImageStateConflict`, with nothing recorded, while a live task holds
        the lock.
        """

        async def work(session: AsyncSession) -> TaskRecord:
            return await self._take(session, image_id, plan, admission)

        for _ in range(ATTEMPTS):
            try:
                return await self._in_transaction(work)
            # A concurrent transaction set the lock first (an insert of the property row
            # colliding with ours, or a changed value): the next one reads what it did.
            except (_LockMoved, IntegrityError):
                continue
        raise ImageStateConflict(f"the import lock of image {image_id} keeps changing; try again")

    async def _take(
        self,
        session: AsyncSession,
        image_id: str,
        plan: Callable[[ImageRecord], NewTask],
        admission: Admission | None,
    ) -> TaskRecord:
        image = await load_image(session, image_id, lock=True)
        seen = snapshot(image)
        new = plan(seen)
        row = loaded_property(image, IMPORT_LOCK)
        holder = (row.value or None) if row is not None else None
        if holder is not None and await is_alive(session, holder, self._lease):
            raise ImageStateConflict(
                f"image {image_id} is being imported by task {holder}; wait for it to finish "
                "(or for its lease to expire if its worker died)"
            )
        if admission is not None:
            await admission(session, seen, new.id)
        task = await add_task(session, new, self._outbox)
        if row is None:
            row = ImageProperty(image_id=image_id, name=IMPORT_LOCK, value=task.id)
            session.add(row)
            await session.flush()
        else:
            await _swap(session, image_id, row.value, task.id)
        if holder is not None:
            with contextlib.suppress(NotFound):  # a holder whose task row is gone
                await end_task(session, holder, TaskEnd.failure(PREEMPTED), self._outbox)
            log.warning("import lock of image %s taken over from task %s", image_id, holder)
        return task


async def _swap(session: AsyncSession, image_id: str, seen: str | None, task_id: str) -> None:
    """Set the lock from ``seen`` to ``task_id``, or :class:`_LockMoved` if it is not ``seen``
    any more (the row lock serialises writers, but the value was read in this transaction's
    first statement, before the lock was granted)."""
    result = await session.execute(
        update(ImageProperty)
        .where(
            ImageProperty.image_id == image_id,
            ImageProperty.name == IMPORT_LOCK,
            ImageProperty.value.is_(None) if seen is None else ImageProperty.value == seen,
        )
        .values(value=task_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise _LockMoved(image_id)
