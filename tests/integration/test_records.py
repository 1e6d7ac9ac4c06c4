"""The records layer against real SQLite and PostgreSQL: schema, lists, lock, claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy import inspect as sa_inspect

from flows.errors import ImageStateConflict, LockLost, NotFound
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    DataFacts,
    ImageRecord,
    TaskRecord,
)
from flows.states import TaskType
from tests.support.records import RecordWrites
from worker.db.catalog import NewImage, SqlCatalog
from worker.db.engine import create_engine, create_sessionmaker
from worker.db.images import SqlImageRepository
from worker.db.locks import SqlImportLocks
from worker.db.schema import SCHEMA_HEAD, current_revision, upgrade
from worker.db.tasks import NewTask, SqlTaskRepository, TaskEnd
from worker.migrations.tables import Base

GLANCE_TABLES = {
    "images",
    "image_properties",
    "image_locations",
    "image_tags",
    "image_members",
    "tasks",
    "task_info",
}


@dataclass
class Records:
    images: SqlImageRepository
    catalog: SqlCatalog
    tasks: SqlTaskRepository
    locks: SqlImportLocks
    writes: RecordWrites
    url: str


@pytest.fixture
async def records(database_url: str) -> AsyncIterator[Records]:
    await upgrade(database_url)
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        yield Records(
            SqlImageRepository(sessions),
            SqlCatalog(sessions),
            SqlTaskRepository(sessions, lease_seconds=1.0),
            SqlImportLocks(sessions, lease_seconds=1.0),
            RecordWrites(engine),
            database_url,
        )
    finally:
        await engine.dispose()


async def _new_task(records: Records, image_id: str, task_id: str) -> None:
    await records.writes.create_task(
        task_id=task_id, image_id=image_id, type="api_image_import", input={"image_id": image_id}
    )


def _import_task(task_id: str) -> Callable[[ImageRecord], NewTask]:
    """What a submission makes of an image: an import task (here without preconditions)."""
    return lambda image: NewTask(TaskType.IMPORT, image.id, {"image_id": image.id}, id=task_id)


async def test_upgrade_creates_glance_tables_and_is_idempotent(database_url: str) -> None:
    assert await current_revision(database_url) is None
    await upgrade(database_url)
    await upgrade(database_url)
    assert await current_revision(database_url) == SCHEMA_HEAD
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: sa_inspect(c).get_table_names()))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in sa_inspect(c).get_columns("image_locations")}
            )
    finally:
        await engine.dispose()
    assert tables >= GLANCE_TABLES
    assert {"image_id", "value", "meta_data", "status", "deleted"} <= columns


async def test_the_models_describe_the_schema_the_migrations_create(database_url: str) -> None:
    await upgrade(database_url)
    engine = create_engine(database_url)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_image_lifecycle_fields(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name="cirros", disk_format="qcow2", container_format="bare")
    )
    assert image.status == "queued"
    await records.writes.set_status(image.id, "importing")
    await records.writes.add_location(image.id, "file:///s/central/x", "central")
    await records.writes.add_location(image.id, "file:///s/central/x", "central")
    await records.writes.add_location(image.id, "file:///s/dcn0/x", "dcn0")
    facts = DataFacts(size=10, virtual_size=20, checksum="a" * 32, os_hash_value="b" * 128)
    await records.writes.record_data(image.id, facts)
    loaded = await records.images.get(image.id)
    assert loaded.status == "importing"
    assert loaded.stores == ["central", "dcn0"]
    assert (loaded.size, loaded.virtual_size, loaded.checksum) == (10, 20, "a" * 32)
    assert (loaded.os_hash_algo, loaded.os_hash_value) == ("sha512", "b" * 128)
    await records.images.remove_location(image.id, "file:///s/central/x")
    assert (await records.images.get(image.id)).stores == ["dcn0"]
    assert [i.id for i in await records.images.list()] == [image.id]


async def test_unknown_ids_are_named(records: Records) -> None:
    with pytest.raises(NotFound, match="image nope does not exist"):
        await records.images.get("nope")
    with pytest.raises(NotFound, match="task nope does not exist"):
        await records.tasks.get("nope")


async def test_store_lists_keep_order_and_survive_concurrent_writers(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    stores = [f"s{n}" for n in range(12)]
    await asyncio.gather(
        *(records.writes.add_to_list(image.id, IMPORTING_TO_STORES, [s]) for s in stores)
    )
    current = (await records.images.get(image.id)).store_list(IMPORTING_TO_STORES)
    assert sorted(current) == sorted(stores)
    await asyncio.gather(
        *(records.images.remove_from_list(image.id, IMPORTING_TO_STORES, [s]) for s in stores[:6])
    )
    assert (await records.images.get(image.id)).store_list(IMPORTING_TO_STORES) == [
        s for s in current if s not in stores[:6]
    ]
    assert await records.writes.add_to_list(image.id, FAILED_IMPORT, ["b", "a", "b"]) == ["b", "a"]


async def test_lock_is_compare_and_swap(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    results = await asyncio.gather(
        *(records.locks.take_for_new_task(image.id, _import_task(f"task-{n}")) for n in range(8)),
        return_exceptions=True,
    )
    (won,) = [result for result in results if isinstance(result, TaskRecord)]
    assert all(isinstance(r, ImageStateConflict) for r in results if r is not won)
    winner = won.id
    assert (await records.images.get(image.id)).properties[IMPORT_LOCK] == winner
    await _new_task(records, image.id, "someone-else")
    assert await records.tasks.finish("someone-else", TaskEnd.failure("never held the lock"))
    assert (await records.images.get(image.id)).properties[IMPORT_LOCK] == winner
    assert await records.tasks.finish(winner, TaskEnd.success({}))
    assert IMPORT_LOCK not in (await records.images.get(image.id)).properties


async def test_live_lock_refused_dead_lock_taken_over(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    await records.locks.take_for_new_task(image.id, _import_task("t1"))
    await records.tasks.claim("t1", "worker-a")
    with pytest.raises(ImageStateConflict, match="being imported by task t1"):
        await records.locks.take_for_new_task(image.id, _import_task("t2"))
    assert [task.id for task in await records.tasks.list_for_image(image.id)] == ["t1"]
    await asyncio.sleep(1.2)
    await records.locks.take_for_new_task(image.id, _import_task("t2"))
    assert (await records.images.get(image.id)).properties[IMPORT_LOCK] == "t2"
    old = await records.tasks.get("t1")
    assert old.status == "failure" and "lock preempted" in old.message
    assert not await records.tasks.heartbeat("t1", "worker-a")


async def test_claim_is_exclusive_until_the_lease_expires(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    await _new_task(records, image.id, "t1")
    await records.tasks.claim("t1", "worker-a")
    with pytest.raises(LockLost, match="claimed by worker-a"):
        await records.tasks.claim("t1", "worker-b")
    assert await records.tasks.heartbeat("t1", "worker-a")
    assert await records.tasks.is_alive("t1")
    await asyncio.sleep(1.2)
    assert not await records.tasks.is_alive("t1")
    await records.tasks.claim("t1", "worker-b")
    assert (await records.tasks.get("t1")).claimed_by == "worker-b"
    assert not await records.tasks.heartbeat("t1", "worker-a")


async def test_task_states_and_info(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    await _new_task(records, image.id, "t1")
    task = await records.tasks.get("t1")
    assert (task.status, task.input, task.claimed_by) == ("pending", {"image_id": image.id}, None)
    await records.tasks.claim("t1", "w")
    await records.tasks.set_message("t1", "Copied 10 MiB")
    assert (await records.tasks.get("t1")).message == "Copied 10 MiB"
    await records.tasks.requeue("t1", "requeued: worker stopping")
    requeued = await records.tasks.get("t1")
    assert (requeued.status, requeued.claimed_by) == ("pending", None)
    await records.tasks.claim("t1", "w2")
    assert await records.tasks.finish("t1", TaskEnd.success({"stores": ["central"]}))
    done = await records.tasks.get("t1")
    assert (done.status, done.result, done.claimed_by) == ("success", {"stores": ["central"]}, None)
    await records.tasks.requeue("t1", "ignored")
    assert not await records.tasks.finish("t1", TaskEnd.failure("too late"))
    assert (await records.tasks.get("t1")).status == "success"
    assert [t.id for t in await records.tasks.list_for_image(image.id)] == ["t1"]


async def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/wal.db"
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    finally:
        await engine.dispose()
    assert mode == "wal"
