"""``imgworker db``: the image and task records' schema."""

from __future__ import annotations

from pathlib import Path

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


@db_group.command("load-metadefs")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@pass_env
def db_load_metadefs(env: Env, source: Path) -> None:
    """Load metadata definitions (Glance's etc/metadefs/*.json, as glance-manage
    db_load_metadefs): each file one namespace; one already there is skipped."""
    from worker.db.engine import create_engine, create_sessionmaker
    from worker.db.metadefs.loader import LoadReport, load_definitions
    from worker.db.schema import upgrade_if_behind

    url = env.settings.database.url

    async def load() -> LoadReport:
        engine = create_engine(url)
        try:
            await upgrade_if_behind(engine, url)
            return await load_definitions(create_sessionmaker(engine), source)
        finally:
            await engine.dispose()

    try:
        report = run(load())
    except FileNotFoundError as missing:
        raise click.ClickException(str(missing)) from None
    for name in report.loaded:
        click.echo(f"loaded   {name}")
    for name in report.skipped:
        click.echo(f"skipped  {name} (already defined)")
    for problem in report.refused:
        click.echo(f"refused  {problem}", err=True)
    click.echo(
        f"{len(report.loaded)} loaded, {len(report.skipped)} skipped, {len(report.refused)} refused"
    )
    if report.refused:
        raise SystemExit(1)
