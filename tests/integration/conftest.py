"""Fixtures for the integration suites: real databases, generated images, settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.support.http import serve_directory
from tests.support.images import MiB, make_sparse_raw
from tests.support.keystone import keystone, keystone_cloud  # noqa: F401  (session fixtures)
from tests.support.services import require_tcp
from tests.support.workers import Topology, delete_topology

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, or a new PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'imgworker.db'}"
        return
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (what several worker processes share)."""
    with fresh_postgres() as url:
        yield url


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new PostgreSQL database for the duration (dropped after); its URL."""
    require_tcp("PostgreSQL", "127.0.0.1", 5432)
    name = f"imgworker_it_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
async def broker_topology() -> AsyncIterator[Topology]:
    """Broker names of the test's own; its queues and exchanges are deleted afterwards."""
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    topology = Topology()
    yield topology
    await delete_topology(topology)


@pytest.fixture
async def small_image_source(tmp_path: Path) -> AsyncIterator[str]:
    """A loopback web server whose ``/small.raw`` is a 2 MiB raw image (1 MiB of data)."""
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(www / "small.raw", 2 * MiB, [(0, MiB)])
    async with serve_directory(www) as base:
        yield base
