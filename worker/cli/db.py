"""``imgworker db``: the image and task records' schema."""

from __future__ import annotations

import click

from worker.cli.env import Env, pass_env, run


@click.group("db")
def db_group() -> None:
    """The image and task records."""


@db_group.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from worker.db.schema import upgrade

    url = env.settings.database.url
    run(upgrade(url))
    click.echo(f"schema up to date: {url}")
