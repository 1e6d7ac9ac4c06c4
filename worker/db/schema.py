"""Creating and upgrading the schema with Alembic (``imgworker db upgrade``).

Importing Alembic costs more than a whole read-only command may take, so it is imported
only when an upgrade really runs: :data:`SCHEMA_HEAD` names the newest migration, and a
database already at it (one ``SELECT`` on ``alembic_version``) needs no Alembic at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: The revision of the newest migration in ``worker/migrations/versions``. A new migration
#: changes it (``tests/unit/test_schema_head.py`` fails until it does).
SCHEMA_HEAD = "0006_quota_holds"

#: The revision a database is at: Alembic's own table.
REVISION_QUERY = "SELECT version_num FROM alembic_version"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` using the migrations shipped in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would treat a '%' in a password as a directive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision``, saying so in one log line.

    Alembic's async environment runs its own event loop, so the upgrade runs in a thread.
    Alembic's own lines (its plugins set up, its implementation chosen, each migration) are
    kept below INFO: a fresh database's first start reports one line, not a dozen.
    """
    import asyncio
    import logging

    before = await current_revision(url)
    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(logging.WARNING)  # before the import: its plugins announce themselves
    try:
        from alembic import command

        await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
    finally:
        alembic.setLevel(level)
    after = await current_revision(url)
    if after != before:
        logging.getLogger(__name__).info(
            "database schema upgraded from %s to %s", before or "(empty)", after
        )


async def upgrade_if_behind(engine: AsyncEngine, url: str) -> None:
    """Upgrade the schema at ``url`` unless ``engine`` finds it at :data:`SCHEMA_HEAD`."""
    if await engine_revision(engine) != SCHEMA_HEAD:
        await upgrade(url)


async def engine_revision(engine: AsyncEngine) -> str | None:
    """The revision the database behind ``engine`` is at (None for an empty database).

    Raises :class:`~flows.errors.RecordsUnavailable` when the database does not answer.
    """
    from sqlalchemy import text

    from flows.errors import RecordsUnavailable
    from worker.db.outages import describe, is_unreachable

    try:
        async with engine.connect() as connection:
            has_table = await connection.run_sync(
                lambda sync: sync.dialect.has_table(sync, "alembic_version")
            )
            if not has_table:
                return None
            row = (await connection.execute(text(REVISION_QUERY))).first()
            return None if row is None else str(row[0])
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        raise RecordsUnavailable(describe(exc)) from exc


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None for an empty database)."""
    from worker.db.engine import create_engine

    engine = create_engine(url)
    try:
        return await engine_revision(engine)
    finally:
        await engine.dispose()
