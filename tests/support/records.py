"""Record writes only tests make: an image or a task set up as a test needs it.

Neither the workers nor the API write these: an import records what it did through the
hold-checked methods of :class:`worker.db.images.SqlImageRepository`, and tasks are recorded
with their image's lock (:mod:`worker.db.locks`) or its deletion (:mod:`worker.db.catalog`).
A test that needs an image in a given state, or a task no API made, writes it here, in
transactions of the records' own kind (the image row locked first, as every writer does).
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from flows.records import DataFacts, TaskRecord, join_store_list, split_store_list
from flows.states import LocationStatus, TaskType
from worker.db.engine import create_sessionmaker
from worker.db.image_rows import lock_image_row, property_row, put_property
from worker.db.models import Image, ImageLocation, utcnow
from worker.db.tasks import NewTask, task_snapshot
from worker.db.transactions import Transactional


class RecordWrites(Transactional):
    """Writes of a test's own, on the records behind ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(create_sessionmaker(engine))

    async def create_task(
        self, *, task_id: str, image_id: str, type: str, input: dict[str, object]
    ) -> TaskRecord:
        """A ``pending`` task as given (no lock taken, nothing announced)."""

        async def work(session: AsyncSession) -> TaskRecord:
            task = NewTask(TaskType(type), image_id, input, id=task_id).row()
            session.add(task)
            await session.flush()
            return task_snapshot(task)

        return await self._in_transaction(work)

    async def set_status(self, image_id: str, status: str) -> None:
        """Set ``images.status``."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(status=status, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

        await self._in_transaction(work)

    async def add_location(self, image_id: str, url: str, store: str) -> None:
        """Record an active location in ``store`` (once per URL)."""

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            recorded = await session.scalar(
                select(ImageLocation.id).where(
                    ImageLocation.image_id == image_id,
                    ImageLocation.value == url,
                    ImageLocation.deleted.is_(False),
                )
            )
            if recorded is None:
                session.add(
                    ImageLocation(
                        image_id=image_id,
                        value=url,
                        meta_data={"store": store},
                        status=LocationStatus.ACTIVE,
                    )
                )

        await self._in_transaction(work)

    async def record_data(self, image_id: str, facts: DataFacts) -> None:
        """Record the size, virtual size, checksum and multihash of the image's data."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(**asdict(facts), updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

        await self._in_transaction(work)

    async def add_to_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        """Append the stores missing from list property ``prop``; return the new list."""

        async def work(session: AsyncSession) -> list[str]:
            await lock_image_row(session, image_id)
            row = await property_row(session, image_id, prop)
            current = split_store_list(row.value or "") if row else []
            new = current + [store for store in dict.fromkeys(stores) if store not in current]
            await put_property(session, image_id, prop, join_store_list(new), row)
            return new

        return await self._in_transaction(work)
