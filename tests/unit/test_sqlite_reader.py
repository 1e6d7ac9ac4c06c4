"""The read-only commands' SQLite reader builds exactly the repositories' records."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flows.errors import NotFound
from flows.records import FAILED_IMPORT, IMPORTING_TO_STORES, DataFacts
from flows.states import ImageStatus
from tests.support.records import RecordWrites
from worker.config.settings import DatabaseSettings
from worker.db.catalog import NewImage
from worker.db.sqlite_reader import SqliteReader, sqlite_file
from worker.db.tasks import TaskEnd
from worker.tasks.services import Records


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[Records]:
    database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    opened = await Records.open(database, lease_seconds=30.0)
    try:
        yield opened
    finally:
        await opened.close()


async def _fill(records: Records) -> tuple[str, str, str]:
    """An active image in two stores (one location forgotten), a queued one, a deleted one."""
    images, writes = records.images, RecordWrites(records.engine)
    active = await records.catalog.create(
        NewImage(
            owner=None,
            name="cirros",
            disk_format="qcow2",
            container_format="bare",
            properties={"a": "1"},
        )
    )
    await writes.add_to_list(active.id, IMPORTING_TO_STORES, ["central", "dcn0", "dcn1"])
    for store in ("central", "dcn0", "old"):
        await writes.add_location(active.id, f"file:///{store}/{active.id}", store)
    await images.remove_location(active.id, f"file:///old/{active.id}")
    await images.remove_from_list(active.id, IMPORTING_TO_STORES, ["central", "dcn0", "dcn1"])
    await writes.add_to_list(active.id, FAILED_IMPORT, ["dcn1"])
    await images.set_property(active.id, "empty", "")
    await writes.record_data(active.id, DataFacts(10, 20, "a" * 32, "b" * 128))
    await writes.set_status(active.id, ImageStatus.ACTIVE)
    await records.catalog.create(
        NewImage(owner=None, name=None, disk_format="raw", container_format="bare")
    )
    gone = await records.catalog.create(
        NewImage(owner=None, name="gone", disk_format="raw", container_format="bare")
    )
    async with records.engine.begin() as connection:
        await connection.exec_driver_sql(f"UPDATE images SET deleted = 1 WHERE id = '{gone.id}'")
    task = await writes.create_task(
        task_id="t-1", image_id=active.id, type="api_image_import", input={"x": [1, True]}
    )
    await records.tasks.finish(task.id, TaskEnd.success({"stores": ["central"]}, "done"))
    await writes.create_task(task_id="t-2", image_id=gone.id, type="api_image_import", input={})
    return active.id, gone.id, task.id


async def test_the_reader_returns_what_the_repositories_return(records: Records) -> None:
    active, gone, task = await _fill(records)
    reader = SqliteReader.open(records.engine.url.render_as_string())
    assert reader is not None
    with reader:
        assert reader.image(active) == await records.images.get(active)
        assert reader.images() == await records.images.list()
        assert len(reader.images()) == 2
        assert reader.task(task) == await records.tasks.get(task)
        assert reader.task("t-2") == await records.tasks.get("t-2")
        assert reader.tasks_of(active) == await records.tasks.list_for_image(active)
        assert [t.id for t in reader.tasks_of(gone)] == ["t-2"]
        with pytest.raises(NotFound, match=f"image {gone} does not exist"):
            reader.image(gone)
        with pytest.raises(NotFound, match="task nope does not exist"):
            reader.task("nope")


async def test_the_reader_writes_nothing(records: Records, tmp_path: Path) -> None:
    await _fill(records)
    reader = SqliteReader.open(records.engine.url.render_as_string())
    assert reader is not None
    with reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("DELETE FROM images")


def test_only_a_file_at_the_current_schema_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert SqliteReader.open(f"sqlite+aiosqlite:///{missing}") is None
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert SqliteReader.open(f"sqlite:///{empty}") is None
    with sqlite3.connect(empty) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('0000')")
    assert SqliteReader.open(f"sqlite:///{empty}") is None


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:///./imgworker.db", "imgworker.db"),
        ("sqlite:////srv/records.db", "/srv/records.db"),
        ("sqlite+pysqlite:///rel/x.db", "rel/x.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///x.db?mode=ro", None),
        ("sqlite:///a%20b.db", None),
        ("postgresql+asyncpg://u@h/db", None),
        ("nonsense", None),
    ],
)
def test_sqlite_file_accepts_only_plain_file_urls(url: str, path: str | None) -> None:
    assert sqlite_file(url) == (None if path is None else Path(path))
