"""What a project holds, counted from the records, and admitting work against its limits.

Glance's four unified-limit resources, counted as Glance counts them
(``glance/db/sqlalchemy/api.py``) over the images the project owns that are not ``killed``,
``deleted`` or ``pending_delete``:

- ``image_count_total``: those images.
- ``image_size_total`` (MiB, rounded down): each image's ``size`` times its locations that are
  not deleted, plus what the project's unfinished imports were admitted to store
  (``quota_holds``): data is stored at the end of an import, and the admission must count it
  from the start. While an import runs, a store it has written counts twice (its location and
  its hold) until the task ends: never less than the truth.
- ``image_stage_total`` (MiB, rounded down): the ``size`` of the busy images (below).
- ``image_count_uploading``: the busy images.

An image is *busy* while it is ``saving``, ``uploading`` or ``importing``, while its
``os_glance_importing_to_stores`` is not empty (a copy in progress) — Glance's two rules —
and, added here, while an unfinished task holds its import lock: an import admitted but not
yet started by a worker counts from the moment it is admitted, and stops counting when its
task ends, whichever way (:func:`worker.db.tasks.end_task` releases the lock).

:func:`admit` is the check a transaction that admits work runs, after its other checks and
before it writes: it takes the project's lock (:mod:`worker.db.project_locks`), counts, and
lets the caller's judge refuse. The count and the write that follows are then one step for
every other writer of the project, on any replica.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.records import IMPORT_LOCK, IMPORTING_TO_STORES, ImageRecord
from flows.states import ImageStatus, LocationStatus, TaskStatus
from worker.db.models import Image, ImageLocation, ImageProperty, QuotaHold, Task
from worker.db.project_locks import lock_project
from worker.db.transactions import Transactional

MiB = 1024 * 1024
#: Distinguishes these project locks from the metadef limit's.
_LOCK_SPACE = 0x1A6E1
#: Images that hold nothing any more.
GONE = (ImageStatus.KILLED, ImageStatus.DELETED, ImageStatus.PENDING_DELETE)
#: A task that still holds what it was admitted for.
UNFINISHED = (TaskStatus.PENDING, TaskStatus.PROCESSING)
#: Statuses of an image whose data is on its way in.
UPLOADING = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)


class Resource(StrEnum):
    """Glance's unified-limit resources, by their registered names in Keystone."""

    IMAGE_SIZE_TOTAL = "image_size_total"
    IMAGE_STAGE_TOTAL = "image_stage_total"
    IMAGE_COUNT_TOTAL = "image_count_total"
    IMAGE_COUNT_UPLOADING = "image_count_uploading"


@dataclass(frozen=True, slots=True)
class Charge:
    """What a request would add to a project's usage (Glance's ``deltas``)."""

    project_id: str
    deltas: Mapping[Resource, int]


#: Decides a charge against the usage counted for it; raises to refuse (the transaction
#: then writes nothing).
Judge = Callable[[Charge, Mapping[Resource, int]], None]
#: A check run inside the transaction that admits work, with the image as that transaction
#: locked it (None when the work creates the image) and the task it records (None: no task).
Admission = Callable[[AsyncSession, ImageRecord | None, str | None], Awaitable[None]]


async def admit(
    session: AsyncSession,
    charge: Charge,
    judge: Judge,
    *,
    task_id: str | None = None,
    holds: Mapping[Resource, int] | None = None,
) -> None:
    """In ``session``: hold the project's lock, count its usage, let ``judge`` decide; then
    record ``holds`` (in bytes) for ``task_id``, counted while that task is unfinished.

    Resources the charge adds nothing to are judged before the lock: they refuse a project
    already over its limit and cannot be overrun by this request, so the project's other
    requests need not wait for their counting.
    """
    project = charge.project_id
    settled = {r: d for r, d in charge.deltas.items() if d <= 0}
    if settled:
        judge(Charge(project, settled), await count_usage(session, project, settled))
    adding = {r: d for r, d in charge.deltas.items() if d > 0}
    if adding:
        await lock_project(session, _LOCK_SPACE, project)
        judge(Charge(project, adding), await count_usage(session, project, adding))
    for resource, amount in (holds or {}).items():
        if task_id is not None and amount > 0:
            hold = QuotaHold(task_id=task_id, resource=resource, project=project, amount=amount)
            session.add(hold)


async def count_usage(
    session: AsyncSession, project_id: str, resources: Iterable[Resource]
) -> dict[Resource, int]:
    """``project_id``'s usage of ``resources`` as the records say now (one query)."""
    wanted = list(dict.fromkeys(resources))
    if not wanted:
        return {}
    row = (await session.execute(select(*(_COUNTS[r](project_id) for r in wanted)))).one()
    return {resource: int(value or 0) for resource, value in zip(wanted, row, strict=True)}


class SqlUsage(Transactional):
    """Usage read on its own (``GET /v2/info/usage``, a check before an upload's bytes)."""

    async def count(self, project_id: str, resources: Iterable[Resource]) -> dict[Resource, int]:
        """:func:`count_usage` in a transaction of its own."""

        async def work(session: AsyncSession) -> dict[Resource, int]:
            return await count_usage(session, project_id, resources)

        return await self._in_transaction(work)

    async def check(self, charge: Charge, judge: Judge) -> None:
        """Let ``judge`` decide ``charge`` against the usage now, without holding the
        project: an early answer, not an admission."""
        judge(charge, await self.count(charge.project_id, charge.deltas))


def is_busy(image: ImageRecord) -> bool:
    """Whether ``image`` already counts in ``image_count_uploading`` (as its record reads)."""
    return (
        image.status in UPLOADING
        or bool(image.properties.get(IMPORTING_TO_STORES))
        or bool(image.properties.get(IMPORT_LOCK))
    )


def _owned(project_id: str) -> ColumnElement[bool]:
    return and_(Image.owner == project_id, Image.deleted.is_(False), Image.status.not_in(GONE))


def _busy() -> ColumnElement[bool]:
    copying = exists().where(
        ImageProperty.image_id == Image.id,
        ImageProperty.name == IMPORTING_TO_STORES,
        ImageProperty.value != "",
        ImageProperty.deleted.is_(False),
    )
    admitted = exists().where(
        ImageProperty.image_id == Image.id,
        ImageProperty.name == IMPORT_LOCK,
        Task.id == ImageProperty.value,
        Task.status.in_(UNFINISHED),
    )
    return or_(Image.status.in_(UPLOADING), copying, admitted)


def _image_count(project_id: str) -> Any:
    return select(func.count(Image.id)).where(_owned(project_id)).scalar_subquery()


def _uploading_count(project_id: str) -> Any:
    return select(func.count(Image.id)).where(_owned(project_id), _busy()).scalar_subquery()


def _stored_mib(project_id: str) -> Any:
    copies = (
        select(func.count(ImageLocation.id))
        .where(
            ImageLocation.image_id == Image.id,
            ImageLocation.deleted.is_(False),
            ImageLocation.status != LocationStatus.DELETED,
        )
        .scalar_subquery()
    )
    stored = (
        select(func.coalesce(func.sum(Image.size * copies), 0))
        .where(_owned(project_id), Image.size > 0)
        .scalar_subquery()
    )
    held = (
        select(func.coalesce(func.sum(QuotaHold.amount), 0))
        .where(
            QuotaHold.project == project_id,
            QuotaHold.resource == Resource.IMAGE_SIZE_TOTAL,
            Task.id == QuotaHold.task_id,
            Task.status.in_(UNFINISHED),
        )
        .scalar_subquery()
    )
    return select((stored + held) / MiB).scalar_subquery()


def _staged_mib(project_id: str) -> Any:
    total = func.coalesce(func.sum(Image.size), 0)
    return select(total / MiB).where(_owned(project_id), Image.size > 0, _busy()).scalar_subquery()


_COUNTS: dict[Resource, Callable[[str], Any]] = {
    Resource.IMAGE_COUNT_TOTAL: _image_count,
    Resource.IMAGE_COUNT_UPLOADING: _uploading_count,
    Resource.IMAGE_SIZE_TOTAL: _stored_mib,
    Resource.IMAGE_STAGE_TOTAL: _staged_mib,
}
