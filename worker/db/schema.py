"""Creating and upgrading the schema with Alembic (``imgworker db upgrade``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` using the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would treat a '%' in a password as a directive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision``.

    Alembic's async environment runs its own event loop, so the upgrade runs in a thread.
    """
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None for an empty database)."""
    from sqlalchemy import text

    from worker.db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            has_table = await connection.run_sync(
                lambda sync: sync.dialect.has_table(sync, "alembic_version")
            )
            if not has_table:
                return None
            row = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).first()
            return None if row is None else str(row[0])
    finally:
        await engine.dispose()
