"""``imgworker show``, ``list`` and ``task-show``: the records, read and printed.

On a SQLite file already at the current schema they read it with the standard library
(:class:`worker.db.sqlite_reader.SqliteReader`): no pydantic, SQLAlchemy or Alembic is
imported, so they answer at once. Otherwise they open :class:`worker.tasks.services.Records`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from worker.cli.env import Env, exit_error, pass_env, run_with_records
from worker.cli.presenter import IMAGE_FIELDS

if TYPE_CHECKING:
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
    """Show an image: status, stores, the import lists, hashes, locations."""
    from worker.cli.presenter import image_fields, render_table

    image = _read(
        env, lambda reader: reader.image(image_id), lambda records: records.images.get(image_id)
    )
    fields = image_fields(image)
    click.echo(json.dumps(fields, indent=2) if as_json else render_table(fields))


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
