"""``imgworker show``, ``list`` and ``task-show``: the records, read and printed.

On a SQLite file already at the current schema they read it with the standard library
(:class:`worker.db.sqlite_reader.SqliteReader`): no pydantic, SQLAlchemy or Alembic is
imported, so they answer at once. Otherwise they open :class:`worker.tasks.services.Records`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from worker.cli.env import Env, exit_error, pass_env, run_with_records
from worker.cli.presenter import IMAGE_FIELDS

if TYPE_CHECKING:
    from flows.records import ImageRecord, TaskRecord
    from worker.db.sqlite_reader import SqliteReader
    from worker.tasks.services import Records

T = TypeVar("T")


def _read(
    env: Env, quick: Callable[[SqliteReader], T], full: Callable[[Records], Awaitable[T]]
) -> T:
    """``quick(reader)`` when the database allows it, else ``full(records)``."""
    import sqlite3

    from flows.errors import ImportFailed
    from worker.db.sqlite_reader import SqliteReader

    url = env.database_url
    try:
        reader = SqliteReader.open(url)
        if reader is None:
            return run_with_records(env.settings, full)
        with reader:
            return quick(reader)
    except ImportFailed as exc:
        raise exit_error(exc) from exc
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot read the records at {url}: {exc}") from exc


@click.command("show")
@click.argument("image_id")
@click.option(
    "--json", "as_json", is_flag=True, help=f"One JSON object: {', '.join(IMAGE_FIELDS)}."
)
@pass_env
def show_command(env: Env, image_id: str, as_json: bool) -> None:
    """Show an image: status, stores, the import lists, hashes, locations; for a failed image
    (or failed stores), why: its last import task's message and each store's reason."""
    from worker.cli.presenter import failure_lines, image_fields, render_table

    image, tasks = _read(
        env,
        lambda reader: (reader.image(image_id), reader.tasks_of(image_id)),
        lambda records: _image_and_tasks(records, image_id),
    )
    fields = image_fields(image)
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    click.echo(render_table(fields))
    for line in failure_lines(image, tasks):
        click.echo(line)


async def _image_and_tasks(records: Records, image_id: str) -> tuple[ImageRecord, list[TaskRecord]]:
    image = await records.images.get(image_id)
    return image, await records.tasks.list_for_image(image_id)


@click.command("tasks")
@click.argument("image_id")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until none of them is pending or processing; exit 1 if the last one failed.",
)
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@pass_env
def tasks_command(env: Env, image_id: str, wait: bool, timeout: float) -> None:
    """List an image's tasks, oldest first: id, type, status, last change, message (what
    ``glance image-tasks IMAGE_ID`` shows)."""
    import time

    from flows.states import TaskStatus, is_terminal
    from worker.cli.presenter import task_line

    deadline = time.monotonic() + timeout
    while True:
        tasks = _read(
            env,
            lambda reader: _quick_tasks_of(reader, image_id),
            lambda records: _tasks_of(records, image_id),
        )
        if not wait or all(is_terminal(task.status) for task in tasks):
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"image {image_id}: tasks still running after {timeout:g} s")
        time.sleep(1.0)
    for task in tasks:
        click.echo(task_line(task))
    if wait and tasks and tasks[-1].status == TaskStatus.FAILURE:
        sys.exit(1)


def _quick_tasks_of(reader: SqliteReader, image_id: str) -> list[TaskRecord]:
    reader.image(image_id)  # an unknown image is an error, not an empty list
    return reader.tasks_of(image_id)


async def _tasks_of(records: Records, image_id: str) -> list[TaskRecord]:
    await records.images.get(image_id)  # an unknown image is an error, not an empty list
    return await records.tasks.list_for_image(image_id)


@click.command("list")
@click.option("--include-stores", is_flag=True, help="Add the stores each image is in.")
@pass_env
def list_command(env: Env, include_stores: bool) -> None:
    """List images."""
    images = _read(env, lambda reader: reader.images(), lambda records: records.images.list())
    for image in images:
        row = [image.id, image.status.ljust(9), image.name or ""]
        if include_stores:
            row.append(",".join(image.stores))
        click.echo("  ".join(row))


@click.command("task-show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def task_show(env: Env, task_id: str, as_json: bool) -> None:
    """Show a task: status, message, input, result."""
    from worker.cli.presenter import task_fields

    task = _read(
        env, lambda reader: reader.task(task_id), lambda records: records.tasks.get(task_id)
    )
    fields = task_fields(task)
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
    else:
        for key, value in fields.items():
            click.echo(f"{key:12s} {value if value is not None else ''}")
