"""Record writes only tests make: an image or a task set up as a test needs it.

Neither the workers nor the API write these: an import records what it did through the
hold-checked methods of :class:`worker.db.images.SqlImageRepository`, and tasks are recorded
with their image's lock (:mod:`worker.db.locks`) or its deletion (:mod:`worker.db.catalog`).
A test that needs an image in a given state, or a task no API made, writes it here, in
transactions of the records' own kind (the image row locked first, as every writer does).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from flows.records import TaskRecord
from flows.states import TaskType
from worker.db.engine import create_sessionmaker
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
