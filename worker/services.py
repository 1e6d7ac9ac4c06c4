"""What a process holds for its whole life: the records, the stores, the settings, the hooks.

:class:`Records` is the database alone (what an API server or ``enqueue_import`` needs);
:class:`Services` adds the stores and the observer a worker runs flows with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.observer import FlowObserver, NullObserver
from flows.stores.base import Store
from flows.stores.registry import build_store
from worker.db.engine import create_engine, create_sessionmaker
from worker.db.images import SqlImageRepository
from worker.db.schema import upgrade
from worker.db.tasks import SqlTaskRepository
from worker.settings import DatabaseSettings, Settings


@dataclass
class Records:
    """The image and task repositories over one database engine."""

    images: SqlImageRepository
    tasks: SqlTaskRepository
    engine: AsyncEngine = field(repr=False)

    @classmethod
    async def open(cls, database: DatabaseSettings, *, lease_seconds: float) -> Records:
        """Connect (upgrading the schema first when ``auto_upgrade`` is set)."""
        if database.auto_upgrade:
            await upgrade(database.url)
        engine = create_engine(database.url)
        sessions = create_sessionmaker(engine)
        return cls(
            images=SqlImageRepository(sessions),
            tasks=SqlTaskRepository(sessions, lease_seconds=lease_seconds),
            engine=engine,
        )

    async def ping(self) -> None:
        """Raise unless the database answers (the readiness check)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close the engine's connections."""
        await self.engine.dispose()


def build_stores(settings: Settings) -> dict[str, Store]:
    """Every configured store by name (connections are made on first use)."""
    return {name: build_store(name, config) for name, config in settings.stores.backends.items()}


@dataclass
class Services:
    """A worker's collaborators: records, stores, settings, the observer and its own id."""

    settings: Settings
    records: Records
    stores: dict[str, Store]
    observer: FlowObserver
    worker_id: str

    @classmethod
    async def open(cls, settings: Settings, observer: FlowObserver | None = None) -> Services:
        """Connect to the database and build the stores."""
        records = await Records.open(settings.database, lease_seconds=settings.worker.lease_seconds)
        return cls(
            settings=settings,
            records=records,
            stores=build_stores(settings),
            observer=observer or NullObserver(),
            worker_id=settings.worker.worker_id(),
        )

    @property
    def images(self) -> SqlImageRepository:
        """The image records."""
        return self.records.images

    @property
    def tasks(self) -> SqlTaskRepository:
        """The task records."""
        return self.records.tasks

    async def ping(self) -> None:
        """Raise unless the database answers."""
        await self.records.ping()

    async def close(self) -> None:
        """Close every store, then the database."""
        try:
            for store in self.stores.values():
                await store.close()
        finally:
            await self.records.close()
