"""Alembic environment: runs migrations over the configured async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from worker.db.engine import create_engine
from worker.migrations.tables import Base

target_metadata = Base.metadata


#: Key of the PostgreSQL advisory lock that serialises schema upgrades.
UPGRADE_LOCK_KEY = 0x1A6E0_0001


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Workers and API replicas starting together would otherwise race to create the
            # same tables; the second waits here, then finds the schema current. (SQLite's
            # BEGIN IMMEDIATE, see worker.db.engine, serialises them already.)
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_KEY})")
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
