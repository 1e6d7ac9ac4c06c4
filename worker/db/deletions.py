"""The records of deleting data: locations waiting for removal and the tasks that remove them.

A delete task is ``pending`` until a worker has removed every location it lists; one that
could not finish goes back to ``pending`` and is published again by the sweeper once its
retry delay has passed, however many times it takes: data is never left without a task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.records import TaskRecord
from flows.states import DELETE_TASK_TYPES, LocationStatus, TaskStatus
from worker.db.image_rows import location_deleted
from worker.db.liveness import alive
from worker.db.models import Image, ImageLocation, Task, utcnow
from worker.db.repository import Repository
from worker.db.tasks import task_snapshot

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DoomedLocation:
    """A location whose data a delete task removes: its URL and its store."""

    url: str
    store: str


@dataclass(frozen=True, slots=True)
class DeleteTaskInput:
    """A delete task's input (``task_info.input``): what its worker removes."""

    image_id: str
    locations: tuple[DoomedLocation, ...]
    #: Whether the image's staged bits (an upload or an import under way) go too.
    staging: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The form recorded in the task's input."""
        return {
            "image_id": self.image_id,
            "locations": [{"url": loc.url, "store": loc.store} for loc in self.locations],
            "staging": self.staging,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DeleteTaskInput:
        """Read :meth:`to_dict`'s form back; :class:`ValueError` naming what does not fit."""
        try:
            if data is None:
                raise KeyError("input")
            return cls(
                image_id=_of(str, data["image_id"]),
                locations=tuple(
                    DoomedLocation(_of(str, item["url"]), _of(str, item["store"]))
                    for item in _of(list, data["locations"])
                ),
                staging=_of(bool, data["staging"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a delete task's input: {type(exc).__name__}: {exc}") from None


def _of(kind: type[T], value: object) -> T:
    if not isinstance(value, kind):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


class SqlDeletions(Repository):
    """Locations pending deletion and the delete tasks' schedule."""

    async def forget_location(self, image_id: str, url: str) -> None:
        """Mark a location whose data is gone ``deleted``."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                location_deleted(
                    image_id, url, ImageLocation.status == LocationStatus.PENDING_DELETE
                )
            )

        await self._in_transaction(work)

    async def still_pending(self, image_id: str, urls: list[str]) -> set[str]:
        """Which of ``urls`` are still locations waiting for their data to go."""

        async def work(session: AsyncSession) -> set[str]:
            rows = await session.scalars(
                select(ImageLocation.value).where(
                    ImageLocation.image_id == image_id,
                    ImageLocation.value.in_(urls),
                    ImageLocation.status == LocationStatus.PENDING_DELETE,
                )
            )
            return set(rows)

        return await self._in_transaction(work)

    async def url_in_use(self, image_id: str, url: str) -> bool:
        """Whether a live image still has an active location at ``url`` (then keep the data)."""

        async def work(session: AsyncSession) -> bool:
            found = await session.scalar(
                select(ImageLocation.id)
                .join(Image, Image.id == ImageLocation.image_id)
                .where(
                    ImageLocation.image_id == image_id,
                    ImageLocation.value == url,
                    ImageLocation.status == LocationStatus.ACTIVE,
                    ImageLocation.deleted.is_(False),
                    Image.deleted.is_(False),
                )
            )
            return found is not None

        return await self._in_transaction(work)

    async def due(self, retry_after: timedelta, limit: int = 100) -> list[TaskRecord]:
        """Delete tasks to publish again: pending for ``retry_after``, or claimed by a worker
        that is no longer alive (:mod:`worker.db.liveness`)."""
        now = utcnow()

        async def work(session: AsyncSession) -> list[TaskRecord]:
            rows = await session.scalars(
                select(Task)
                .where(
                    Task.type.in_(DELETE_TASK_TYPES),
                    or_(
                        and_(
                            Task.status == TaskStatus.PENDING, Task.updated_at < now - retry_after
                        ),
                        and_(Task.status == TaskStatus.PROCESSING, not_(alive(self._lease, now))),
                    ),
                )
                .order_by(Task.updated_at)
                .limit(limit)
            )
            return [task_snapshot(task) for task in rows.unique()]

        return await self._in_transaction(work)

    async def take_turn(self, task_id: str, seen: datetime | None) -> bool:
        """Stamp the task if nobody did since ``seen`` (one worker republishes it, not all)."""

        async def work(session: AsyncSession) -> bool:
            result = await session.execute(
                update(Task)
                .where(Task.id == task_id, Task.updated_at == seen)
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._in_transaction(work)

    async def pending_count(self) -> int:
        """Delete tasks not finished yet (the pending-deletions metric)."""

        async def work(session: AsyncSession) -> int:
            count = await session.scalar(
                select(func.count(Task.id)).where(
                    Task.type.in_(DELETE_TASK_TYPES),
                    Task.status.in_((TaskStatus.PENDING, TaskStatus.PROCESSING)),
                )
            )
            return int(count or 0)

        return await self._in_transaction(work)
