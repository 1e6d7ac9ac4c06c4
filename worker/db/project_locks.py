"""Serialising what one project does, across transactions, processes and API replicas.

A limit that is counted and then written to in two steps is only a limit if no other writer
of the same project can count between them. :func:`lock_project` makes the rest of the
caller's transaction the only one of the project (per ``space``): on PostgreSQL an advisory
transaction lock keyed by the project (released at commit or rollback, after the commit is
visible, so the next holder counts what this one wrote); on SQLite nothing is needed, as
every transaction begins ``IMMEDIATE`` (:mod:`worker.db.engine`) and writers queue anyway.
"""

from __future__ import annotations

import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_project(session: AsyncSession, space: int, project: str) -> None:
    """Hold ``project``'s lock of ``space`` for the rest of the transaction.

    Two projects whose names hash alike share a lock: they wait for each other, nothing more.
    """
    if (await session.connection()).dialect.name != "postgresql":
        return
    key = zlib.crc32(project.encode()) - 2**31
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": space, "key": key}
    )
