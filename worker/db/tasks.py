"""The task repository: flows.ports.TaskRepository on ``tasks`` + ``task_info``, plus claims.

A task is ``pending`` until a worker claims it (``processing``, ``claimed_by``), and ends
``success`` or ``failure``. The claim is a compare-and-swap: a worker may claim a task that is
unclaimed, already its own, or whose holder is no longer alive (:mod:`worker.db.liveness`) —
so two deliveries of one message never run the same task at once.

Every task row is built by :meth:`NewTask.row`: an import task's with its image's lock
(:mod:`worker.db.locks`), a delete task's with the image's deletion (:mod:`worker.db.catalog`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import LockLost, NotFound
from flows.events import EventType
from flows.records import IMPORT_LOCK, TaskRecord
from flows.requester import RequestContext
from flows.states import ImageStatus, TaskStatus, TaskType, is_terminal
from worker.db.image_rows import current_image
from worker.db.liveness import alive, is_alive
from worker.db.models import Image, ImageProperty, Task, TaskInfo, utcnow
from worker.db.outbox import Outbox
from worker.db.repository import Repository

PENDING = TaskStatus.PENDING
PROCESSING = TaskStatus.PROCESSING


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to record: what it does, to which image, with which input, for whom."""

    type: TaskType
    image_id: str
    input: Mapping[str, Any]
    requester: RequestContext = field(default_factory=RequestContext)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def row(self) -> Task:
        """The ``pending`` task row, with its info: every task is recorded from this."""
        return Task(
            id=self.id,
            type=self.type,
            status=PENDING,
            image_id=self.image_id,
            owner=self.requester.project_id,
            user_id=self.requester.user_id,
            request_id=self.requester.request_id,
            info=TaskInfo(input=dict(self.input), result=None, message=""),
        )


async def add_task(session: AsyncSession, new: NewTask, outbox: Outbox) -> TaskRecord:
    """In ``session``: record ``new`` and announce ``task.create``; return the task."""
    task = new.row()
    session.add(task)
    await session.flush()
    created = task_snapshot(task)
    await outbox.task(session, created, EventType.TASK_CREATE)
    return created


@dataclass(frozen=True, slots=True)
class TaskEnd:
    """How a task ends: everything :meth:`SqlTaskRepository.finish` writes in one transaction."""

    status: TaskStatus
    message: str = ""
    result: Mapping[str, object] | None = None
    #: The image's new status, written only if this task still held the image's lock.
    image_status: ImageStatus | None = None
    #: End the task only if it is unclaimed or claimed by this worker (a task another worker
    #: took over is theirs to end).
    claimant: str | None = None

    @classmethod
    def success(cls, result: Mapping[str, object], message: str = "") -> TaskEnd:
        """A task that did its work."""
        return cls(TaskStatus.SUCCESS, message, result)

    @classmethod
    def failure(
        cls,
        message: str,
        *,
        image_status: ImageStatus | None = None,
        claimant: str | None = None,
        result: Mapping[str, object] | None = None,
    ) -> TaskEnd:
        """A task that failed, saying why (``result``: what it recorded on the way, such as
        why each failed store failed)."""
        return cls(
            TaskStatus.FAILURE, message, result, image_status=image_status, claimant=claimant
        )


class SqlTaskRepository(Repository):
    """Tasks and their info.

    An import task's life is announced as Glance announces it (``task.create``,
    ``task.run``, ``task.processing``, ``task.success``/``task.failure``) through
    ``outbox``, each once, in the transaction that changes the task.
    """

    async def announce_run(self, task_id: str) -> None:
        """Announce ``task.run``: the task was handed to the workers (or, embedded, run)."""
        if not self._outbox.wants(EventType.TASK_RUN):
            return

        async def work(session: AsyncSession) -> None:
            await self._outbox.task(
                session, task_snapshot(await _load(session, task_id)), EventType.TASK_RUN
            )

        await self._in_transaction(work)

    async def get(self, task_id: str) -> TaskRecord:
        """Return the task, or raise :class:`NotFound` naming the unknown id."""

        async def work(session: AsyncSession) -> TaskRecord:
            return task_snapshot(await _load(session, task_id))

        return await self._in_transaction(work)

    async def get_with_image(self, task_id: str) -> tuple[TaskRecord, bool]:
        """The task, and whether its image exists (not deleted), in one look."""

        async def work(session: AsyncSession) -> tuple[TaskRecord, bool]:
            image_exists = (
                select(Image.id).where(Image.id == Task.image_id, Image.deleted.is_(False)).exists()
            )
            row = (
                await session.execute(select(Task, image_exists).where(Task.id == task_id))
            ).first()
            if row is None:
                raise NotFound(f"task {task_id} does not exist")
            return task_snapshot(row[0]), bool(row[1])

        return await self._in_transaction(work)

    async def list_for_image(self, image_id: str) -> list[TaskRecord]:
        """The image's tasks, oldest first."""

        async def work(session: AsyncSession) -> list[TaskRecord]:
            rows = await session.scalars(
                select(Task).where(Task.image_id == image_id).order_by(Task.created_at, Task.id)
            )
            return [task_snapshot(task) for task in rows.unique()]

        return await self._in_transaction(work)

    async def claim(self, task_id: str, worker_id: str) -> None:
        """Claim the task for ``worker_id`` or raise :class:`LockLost` if a live worker has it."""

        async def work(session: AsyncSession) -> bool:
            return await claim_task(session, task_id, worker_id, self._lease, self._outbox)

        if not await self._in_transaction(work):
            task = await self.get(task_id)
            raise LockLost(
                f"task {task_id} is {task.status}, claimed by {task.claimed_by or 'nobody'}; "
                "not claimed again"
            )

    async def heartbeat(self, task_id: str, worker_id: str) -> bool:
        """Stamp ``updated_at`` while ``worker_id`` holds the claim; tell whether it does."""

        async def work(session: AsyncSession) -> bool:
            result = await session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == PROCESSING, Task.claimed_by == worker_id)
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._in_transaction(work)

    async def is_alive(self, task_id: str) -> bool:
        """Whether the task is alive: unfinished and heartbeated within the lease
        (:mod:`worker.db.liveness`)."""

        async def work(session: AsyncSession) -> bool:
            return await is_alive(session, task_id, self._lease)

        return await self._in_transaction(work)

    async def set_message(self, task_id: str, message: str) -> None:
        """Replace the task's message."""
        await self._set(task_id, message=message)

    async def finish(self, task_id: str, end: TaskEnd) -> bool:
        """End the task as ``end`` says, release its image lock: the one way a task ends.

        One transaction: the task's status, message and result; the image's import lock
        dropped if this task holds it; and the image's status when ``end`` gives one and the
        lock was this task's. A task that already ended (or, with ``claimant``, that another
        worker claimed) is left alone. Returns whether this call ended the task.
        """

        async def work(session: AsyncSession) -> bool:
            return await end_task(session, task_id, end, self._outbox)

        return await self._in_transaction(work)

    async def note_waiting(self, task_id: str, message: str) -> None:
        """Set the message of a task still ``pending`` (one a worker took is left alone)."""

        async def work(session: AsyncSession) -> None:
            task = await _load(session, task_id)
            if task.status == PENDING:
                task.info.message = message

        await self._in_transaction(work)

    async def requeue(self, task_id: str, message: str) -> None:
        """Put an unfinished task back to ``pending`` (unclaimed) to be run again."""

        async def work(session: AsyncSession) -> None:
            task = await _load(session, task_id)
            if is_terminal(task.status):
                return
            task.status = PENDING
            task.claimed_by = None
            task.updated_at = utcnow()
            task.info.message = message

        await self._in_transaction(work)

    async def _set(self, task_id: str, *, message: str) -> None:
        async def work(session: AsyncSession) -> None:
            task = await _load(session, task_id)
            task.updated_at = utcnow()
            task.info.message = message

        await self._in_transaction(work)


async def end_task(session: AsyncSession, task_id: str, end: TaskEnd, outbox: Outbox) -> bool:
    """In ``session``: what :meth:`SqlTaskRepository.finish` does, in the caller's transaction."""
    # The image row first, as every writer of the image's properties locks it (found through
    # the task in the same query: one round trip).
    its_image = select(Task.image_id).where(Task.id == task_id).scalar_subquery()
    await session.execute(select(Image.id).where(Image.id == its_image).with_for_update())
    task = await _load(session, task_id, for_update=True)
    image_id = task.image_id
    if is_terminal(task.status):
        return False
    if end.claimant is not None and task.claimed_by not in (None, end.claimant):
        return False
    task.status = end.status
    task.claimed_by = None
    task.updated_at = utcnow()
    if end.result is not None:
        task.info.result = dict(end.result)
    task.info.message = end.message
    released = image_id is not None and await _release_and_set(
        session, image_id, task_id, end.image_status
    )
    if released and outbox.wants(EventType.IMAGE_UPDATE):
        assert image_id is not None
        await outbox.image(
            session,
            await current_image(session, image_id),
            EventType.IMAGE_UPDATE,
            key=f"{task_id}/{EventType.IMAGE_UPDATE}/end",
        )
    ended = EventType.TASK_SUCCESS if end.status == TaskStatus.SUCCESS else EventType.TASK_FAILURE
    await outbox.task(session, task_snapshot(task), ended)
    return True


async def claim_task(
    session: AsyncSession, task_id: str, worker_id: str, lease: timedelta, outbox: Outbox
) -> bool:
    """In ``session``: make ``worker_id`` the task's holder (``processing``) if the task is
    unclaimed, already its own, pending, or no longer alive (:mod:`worker.db.liveness`); tell
    whether it did."""
    result = await session.execute(
        update(Task)
        .where(
            Task.id == task_id,
            Task.status.in_((PENDING, PROCESSING)),
            or_(
                Task.claimed_by.is_(None),
                Task.claimed_by == worker_id,
                Task.status == PENDING,
                not_(alive(lease)),
            ),
        )
        .values(status=PROCESSING, claimed_by=worker_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    if outbox.wants(EventType.TASK_PROCESSING):
        # Once per task: a worker taking over a dead one's task announces nothing new.
        claimed = task_snapshot(await _load(session, task_id))
        await outbox.task(session, claimed, EventType.TASK_PROCESSING)
    return True


async def _load(session: AsyncSession, task_id: str, *, for_update: bool = False) -> Task:
    query = select(Task).where(Task.id == task_id)
    if for_update:
        query = query.with_for_update(of=Task)
    task = await session.scalar(query)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


async def _release_and_set(
    session: AsyncSession, image_id: str, task_id: str, image_status: ImageStatus | None
) -> bool:
    """Drop ``task_id``'s lock on the image; set ``image_status`` if the lock was its.

    Tell whether the lock was its (the image record changed).
    """
    released = await session.execute(
        delete(ImageProperty).where(
            ImageProperty.image_id == image_id,
            ImageProperty.name == IMPORT_LOCK,
            ImageProperty.value == task_id,
        )
    )
    if image_status is not None and released.rowcount:  # type: ignore[attr-defined]
        await session.execute(
            update(Image)
            .where(Image.id == image_id, Image.deleted.is_(False))
            .values(status=image_status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return bool(released.rowcount)  # type: ignore[attr-defined]


def task_snapshot(task: Task) -> TaskRecord:
    """The task row with its info as a plain record."""
    info = task.info
    return TaskRecord(
        id=task.id,
        type=task.type,
        status=task.status,
        image_id=task.image_id,
        owner=task.owner,
        request_id=task.request_id,
        user_id=task.user_id,
        claimed_by=task.claimed_by,
        input=dict(info.input) if info and info.input else None,
        result=dict(info.result) if info and info.result else None,
        message=(info.message or "") if info else "",
        created_at=task.created_at,
        updated_at=task.updated_at,
        expires_at=task.expires_at,
    )
