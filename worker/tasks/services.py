"""What a process holds for its whole life: the records, the stores, the settings, the hooks.

:class:`Records` is the database alone (what ``enqueue_import`` needs); :class:`Services`
adds the stores and the observer a worker runs flows with, and an API server serves from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.events import NullEvents
from flows.observer import FlowObserver, NullObserver
from flows.ports import ImageEvents
from flows.stores.base import Store
from flows.stores.registry import build_store
from worker.config.settings import DatabaseSettings, NotificationSettings, Settings
from worker.db.activation import SqlActivation
from worker.db.catalog import SqlCatalog
from worker.db.deletions import SqlDeletions
from worker.db.engine import create_engine, create_sessionmaker
from worker.db.events import SqlImageEvents
from worker.db.images import SqlImageRepository
from worker.db.locks import SqlImportLocks
from worker.db.members import SqlMembers
from worker.db.notifications import SqlNotifications
from worker.db.outbox import Outbox
from worker.db.schema import upgrade_if_behind
from worker.db.tasks import SqlTaskRepository
from worker.db.usage import SqlUsage


@dataclass
class Records:
    """The image and task repositories over one database engine.

    ``lease_seconds`` is the lease every one of them judges a task's liveness by
    (:mod:`worker.db.liveness`).

        With ``notifications`` on, the repositories record Glance's events in the outbox with
        the changes they make, and ``events`` records what an import announces.
    """

    images: SqlImageRepository
    tasks: SqlTaskRepository
    #: The import locks, taken for new import tasks.
    locks: SqlImportLocks
    deletions: SqlDeletions
    catalog: SqlCatalog
    #: The outbox as its relays read it.
    notifications: SqlNotifications
    #: What an import flow announces through (:class:`flows.ports.ImageEvents`).
    events: ImageEvents
    #: What each project holds (its unified limits' usage).
    usage: SqlUsage
    #: The projects each image is shared with.
    members: SqlMembers
    #: Deactivating and reactivating images.
    activation: SqlActivation
    engine: AsyncEngine = field(repr=False)

    @classmethod
    async def open(
        cls,
        database: DatabaseSettings,
        *,
        lease_seconds: float,
        notifications: NotificationSettings | None = None,
    ) -> Records:
        """Connect (upgrading the schema first when ``auto_upgrade`` is set and it is behind)."""
        engine = create_engine(database.url)
        if database.auto_upgrade:
            try:
                await upgrade_if_behind(engine, database.url)
            except BaseException:
                await engine.dispose()
                raise
        sessions = create_sessionmaker(engine)
        outbox = Outbox(notifications)
        on = notifications is not None and notifications.enabled
        return cls(
            images=SqlImageRepository(sessions, outbox, lease_seconds=lease_seconds),
            tasks=SqlTaskRepository(sessions, outbox, lease_seconds=lease_seconds),
            locks=SqlImportLocks(sessions, outbox, lease_seconds=lease_seconds),
            deletions=SqlDeletions(sessions, lease_seconds=lease_seconds),
            catalog=SqlCatalog(sessions, outbox, lease_seconds=lease_seconds),
            notifications=SqlNotifications(sessions),
            events=SqlImageEvents(sessions, outbox) if on else NullEvents(),
            usage=SqlUsage(sessions),
            members=SqlMembers(sessions, outbox, lease_seconds=lease_seconds),
            activation=SqlActivation(sessions, outbox, lease_seconds=lease_seconds),
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
    """What a process that runs or serves imports holds: records, stores, settings, the
    observer and its own id (a worker's, or an API server's)."""

    settings: Settings
    records: Records
    stores: dict[str, Store]
    observer: FlowObserver
    worker_id: str

    @classmethod
    async def open(cls, settings: Settings, observer: FlowObserver | None = None) -> Services:
        """Connect to the database and build the stores."""
        records = await Records.open(
            settings.database,
            lease_seconds=settings.worker.lease_seconds,
            notifications=settings.notifications,
        )
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
