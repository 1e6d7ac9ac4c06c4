"""Images and tasks read from SQLite with the standard library, for the read-only commands.

Importing SQLAlchemy alone takes longer than ``imgworker show``, ``list`` or ``task-show``
may (0.3 s), so on a plain SQLite database file already at
:data:`~worker.db.schema.SCHEMA_HEAD` they read it here: read-only, with :mod:`sqlite3`,
into the same :class:`~flows.records.ImageRecord` and :class:`~flows.records.TaskRecord`
the repositories build (``tests/unit/test_sqlite_reader.py`` compares the two on the same
rows). Anything else (PostgreSQL, a URL with options, a schema to create or upgrade) goes
through :class:`worker.tasks.services.Records`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from flows.errors import NotFound
from flows.records import ImageRecord, Location, TaskRecord
from worker.db.schema import REVISION_QUERY, SCHEMA_HEAD

#: Seconds to wait for a writer's lock (readers rarely wait: the database is in WAL mode).
BUSY_TIMEOUT = 30.0

#: Columns of ``images`` read, named as the :class:`ImageRecord` fields they fill.
_IMAGE_FIELDS = (
    "id",
    "name",
    "status",
    "disk_format",
    "container_format",
    "owner",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "visibility",
    "protected",
    "os_hidden",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
)
_TASKS_QUERY = (
    "SELECT t.id, t.type, t.status, t.image_id, t.owner, t.request_id, t.user_id, "
    "t.claimed_by, i.input, i.result, i.message, t.created_at, t.updated_at, t.expires_at "
    "FROM tasks t LEFT OUTER JOIN task_info i ON i.task_id = t.id "
)


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain SQLite URL (``sqlite[+driver]:///PATH``), else None."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.partition("+")[0] != "sqlite" or not rest.startswith("/"):
        return None
    path = rest[1:]
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "?%"):
        return None
    return Path(path)


class SqliteReader:
    """A read-only connection to a SQLite records file at the current schema."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, url: str) -> SqliteReader | None:
        """A reader for ``url``, or None when it is not a SQLite file at :data:`SCHEMA_HEAD`."""
        path = sqlite_file(url)
        if path is None or not path.is_file():
            return None
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT
        )
        try:
            row = connection.execute(REVISION_QUERY).fetchone()
        except sqlite3.OperationalError:  # no alembic_version table: not created yet
            row = None
        if row is None or row[0] != SCHEMA_HEAD:
            connection.close()
            return None
        return cls(connection)

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._db.close()

    def image(self, image_id: str) -> ImageRecord:
        """The image (not deleted), or :class:`NotFound` naming the unknown id."""
        found = self._images("AND id = ?", (image_id,))
        if not found:
            raise NotFound(f"image {image_id} does not exist")
        return found[0]

    def images(self) -> list[ImageRecord]:
        """Every image that is not deleted, oldest first."""
        return self._images("", ())

    def task(self, task_id: str) -> TaskRecord:
        """The task, or :class:`NotFound` naming the unknown id."""
        row = self._db.execute(f"{_TASKS_QUERY} WHERE t.id = ?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return _task(row)

    def tasks_of(self, image_id: str) -> list[TaskRecord]:
        """The image's tasks, oldest first (as ``SqlTaskRepository.list_for_image``)."""
        rows = self._db.execute(
            f"{_TASKS_QUERY} WHERE t.image_id = ? ORDER BY t.created_at, t.id", (image_id,)
        )
        return [_task(row) for row in rows]

    def _images(self, where: str, params: tuple[str, ...]) -> list[ImageRecord]:
        chosen = f"SELECT id FROM images WHERE deleted = 0 {where}"
        properties: dict[str, dict[str, str]] = {}
        for image_id, name, value in self._db.execute(
            "SELECT image_id, name, value FROM image_properties "
            f"WHERE deleted = 0 AND image_id IN ({chosen}) ORDER BY id",
            params,
        ):
            properties.setdefault(image_id, {})[name] = value or ""
        locations: dict[str, list[Location]] = {}
        for image_id, url, meta_data, status in self._db.execute(
            "SELECT image_id, value, meta_data, status FROM image_locations "
            f"WHERE deleted = 0 AND image_id IN ({chosen}) ORDER BY id",
            params,
        ):
            store = str((_json(meta_data) or {}).get("store", ""))
            locations.setdefault(image_id, []).append(Location(url, store, status))
        tags: dict[str, list[str]] = {}
        for image_id, value in self._db.execute(
            "SELECT image_id, value FROM image_tags "
            f"WHERE deleted = 0 AND image_id IN ({chosen}) ORDER BY id",
            params,
        ):
            tags.setdefault(image_id, []).append(value)
        rows = self._db.execute(
            f"SELECT {', '.join(_IMAGE_FIELDS)} FROM images WHERE deleted = 0 {where} "
            "ORDER BY created_at, id",
            params,
        )
        records = []
        for row in rows:
            fields = dict(zip(_IMAGE_FIELDS, row, strict=True))
            fields.update(
                protected=bool(fields["protected"]),
                os_hidden=bool(fields["os_hidden"]),
                created_at=_time(fields["created_at"]),
                updated_at=_time(fields["updated_at"]),
            )
            records.append(
                ImageRecord(
                    **fields,
                    properties=properties.get(row[0], {}),
                    locations=tuple(locations.get(row[0], ())),
                    tags=tuple(tags.get(row[0], ())),
                )
            )
        return records


def _task(row: tuple[Any, ...]) -> TaskRecord:
    input_, result, message = _json(row[8]), _json(row[9]), row[10]
    return TaskRecord(
        id=row[0],
        type=row[1],
        status=row[2],
        image_id=row[3],
        owner=row[4],
        request_id=row[5],
        user_id=row[6],
        claimed_by=row[7],
        input=dict(input_) if input_ else None,
        result=dict(result) if result else None,
        message=message or "",
        created_at=_time(row[11]),
        updated_at=_time(row[12]),
        expires_at=_time(row[13]),
    )


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _time(text: str | None) -> datetime | None:
    """A DATETIME as SQLAlchemy stores it in SQLite (naive, as SQLAlchemy returns it)."""
    return None if text is None else datetime.fromisoformat(text)
