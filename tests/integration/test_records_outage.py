"""PostgreSQL restarting, or dropping every connection, at each point of an import.

The real daemon (``imgworker run``) and RabbitMQ, and a PostgreSQL cluster of this module's
own (never the shared one): every import must end ``active`` with its exact bytes, never
``failed``, with at most one extra delivery. Each point is reached deterministically: a
trigger that pauses the one statement of that point (the test restarts the server while it
sleeps there), a slow source holding the stage step, or the worker frozen (SIGSTOP) while
its store write is under way.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from flows.errors import TransientError
from flows.states import ImageStatus, TaskStatus, is_terminal
from tests.support.images import MiB
from tests.support.private_postgres import PrivatePostgres, private_postgres
from tests.support.services import require_tcp
from tests.support.tasks import STORES, enqueue_download, opened
from tests.support.web_source import web_source
from tests.support.workers import Topology, Worker, delete_topology, running_workers, write_config
from worker.tasks.services import Services

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

#: Longer than the records' own retries (about four seconds): the task has to be put back and
#: its message delivered again.
LONG_OUTAGE_SECONDS = 5.0

#: A trigger function that sleeps the first time its sequence is used (a sequence, because
#: ``nextval`` is not undone when the restart aborts the transaction: the retry passes).
PAUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION imgworker_test_pause() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval(TG_ARGV[0]::regclass) = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    RETURN NEW;
END $$
"""


@dataclass
class Stack:
    """The private cluster, the worker using it, its directories and the image source."""

    pg: PrivatePostgres
    config: Path
    worker: Worker
    root: Path
    www: Path
    source: str

    def image(self, name: str, size: int, *, slow: bool = False) -> str:
        """A new image of ``size`` random bytes; its URL (``slow``: sent at 2 MiB/s)."""
        (self.www / name).write_bytes(os.urandom(size))
        return f"{self.source}/slow/{name}" if slow else f"{self.source}/{name}"

    def story(self, task_id: str) -> str:
        """The worker's log lines about ``task_id`` (the last 40, each cut at 300 characters):
        what a failed check shows."""
        lines = [line[:300] for line in self.worker.output().splitlines() if task_id in line]
        return "\n".join(lines[-40:])

    def deliveries(self, task_id: str) -> int:
        """How many times the worker got the task's message (ran it, or could not check it)."""
        log = self.worker.output()
        return log.count(f"task {task_id}: started after") + log.count(
            f"checking message {task_id}"
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("records-outage")
    www = root / "www"
    www.mkdir()
    topology = Topology()
    with private_postgres() as pg:
        config = write_config(root, pg.url, topology, lease_seconds=30, heartbeat_seconds=1)
        try:
            with (
                web_source(www, slow_bytes_per_second=2 * MiB) as source,
                running_workers(config, root, 1) as (worker,),
            ):
                yield Stack(pg, config, worker, root, www, source)
        finally:
            asyncio.run(delete_topology(topology))


@asynccontextmanager
async def _admin(pg: PrivatePostgres) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own to the private cluster (retried while it restarts)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = await asyncpg.connect(pg.dsn)
            break
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    try:
        yield connection
    finally:
        await connection.close()


async def _pause(pg: PrivatePostgres, name: str, table: str, event: str, when: str) -> None:
    """Make the first statement that fires ``event`` on ``table`` (``when``) sleep."""
    async with _admin(pg) as admin:
        await admin.execute(PAUSE_FUNCTION)
        await admin.execute(f"CREATE SEQUENCE {name}")
        await admin.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) "
            f"EXECUTE FUNCTION imgworker_test_pause('{name}')"
        )


async def _paused(pg: PrivatePostgres) -> None:
    """Wait until a statement sleeps in a pause trigger."""
    deadline = time.monotonic() + 30
    async with _admin(pg) as admin:
        while not await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        ):
            assert time.monotonic() < deadline, "no statement reached the pause"
            await asyncio.sleep(0.05)


async def _until_file(directory: Path, prefix: str, suffix: str) -> None:
    deadline = time.monotonic() + 30
    while not any(
        p.name.startswith(prefix) and p.name.endswith(suffix) for p in _listing(directory)
    ):
        assert time.monotonic() < deadline, f"no {prefix}*{suffix} in {directory}"
        await asyncio.sleep(0.02)


def _listing(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


@contextmanager
def _frozen_while_writing(directory: Path, image_id: str, pid: int) -> Iterator[threading.Event]:
    """Freeze process ``pid`` (SIGSTOP) the moment a partial file of ``image_id`` appears in
    ``directory`` (its store write under way); the event says it happened. SIGCONT after."""
    frozen = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        prefix = f".{image_id}."
        while not stop.is_set():
            with os.scandir(directory) as entries:
                if any(e.name.startswith(prefix) and e.name.endswith(".partial") for e in entries):
                    os.kill(pid, signal.SIGSTOP)
                    frozen.set()
                    return
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, name="freeze-on-write", daemon=True)
    watcher.start()
    try:
        yield frozen
    finally:
        stop.set()
        watcher.join()
        os.kill(pid, signal.SIGCONT)


async def _ended(services: Services, task_id: str, stack: Stack, timeout: float = 60) -> None:
    """Wait for the task to end; the test's own reads ride out the outages too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if is_terminal((await services.tasks.get(task_id)).status):
                return
        except TransientError:
            pass
        assert time.monotonic() < deadline, f"the task did not end:\n{stack.story(task_id)}"
        await asyncio.sleep(0.2)


def _sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


async def _check_imported(
    stack: Stack, services: Services, ids: tuple[str, str], data: Path
) -> None:
    """Active, its exact bytes in every store, at most one extra delivery."""
    image_id, task_id = ids
    await _ended(services, task_id, stack)
    task = await services.tasks.get(task_id)
    assert task.status == TaskStatus.SUCCESS, f"{task.message}\n{stack.story(task_id)}"
    image = await services.images.get(image_id)
    assert image.status == ImageStatus.ACTIVE
    assert image.stores == STORES
    wanted = _sha512(data)
    assert image.os_hash_value == wanted
    for store in STORES:
        assert _sha512(stack.root / "stores" / store / image_id) == wanted, store
    deliveries = stack.deliveries(task_id)
    assert deliveries <= 2, f"delivered {deliveries} times:\n{stack.story(task_id)}"


async def test_a_restart_at_each_point_of_an_import_never_fails_it(stack: Stack) -> None:
    pg, staging = stack.pg, stack.root / "staging"
    async with opened(stack.config) as services:
        # Before the claim: the claim's statement sleeps; the server stops under it and stays
        # down past the records' retries, so the task goes back and comes again.
        claiming = "NEW.status = 'processing' AND OLD.status = 'pending'"
        await _pause(pg, "before_claim", "tasks", "UPDATE", claiming)
        uri = stack.image("claim.raw", 2 * MiB)
        ids = await enqueue_download(services, uri)
        await _paused(pg)
        await asyncio.to_thread(pg.outage, LONG_OUTAGE_SECONDS)
        await _check_imported(stack, services, ids, stack.www / "claim.raw")

        # During stage: a slow source holds the step while the server restarts.
        uri = stack.image("stage.raw", 4 * MiB, slow=True)
        ids = await enqueue_download(services, uri)
        await _until_file(staging, f".{ids[0]}", ".download")
        await asyncio.to_thread(pg.restart)
        await _check_imported(stack, services, ids, stack.www / "stage.raw")

        # During a store write: the worker frozen mid-write while the server restarts.
        uri = stack.image("write.raw", 64 * MiB)
        ids = await enqueue_download(services, uri)
        central, pid = stack.root / "stores" / "central", stack.worker.process.pid
        with _frozen_while_writing(central, ids[0], pid) as frozen:
            await asyncio.to_thread(frozen.wait, 30)
            assert frozen.is_set(), "the store write was not caught under way"
            await asyncio.to_thread(pg.restart)
        await _check_imported(stack, services, ids, stack.www / "write.raw")

        # At the record of a store: the location's insert sleeps; the server stops under it
        # and stays down: the written data is removed, the task comes again.
        await _pause(pg, "store_record", "image_locations", "INSERT", "true")
        uri = stack.image("record.raw", 2 * MiB)
        ids = await enqueue_download(services, uri)
        await _paused(pg)
        await asyncio.to_thread(pg.outage, LONG_OUTAGE_SECONDS)
        await _check_imported(stack, services, ids, stack.www / "record.raw")

        # At completion: the task's success sleeps; the server restarts under it.
        await _pause(pg, "completion", "tasks", "UPDATE", "NEW.status = 'success'")
        uri = stack.image("complete.raw", 2 * MiB)
        ids = await enqueue_download(services, uri)
        await _paused(pg)
        await asyncio.to_thread(pg.restart)
        await _check_imported(stack, services, ids, stack.www / "complete.raw")


async def test_every_connection_dropped_mid_task_never_fails_it(stack: Stack) -> None:
    async with opened(stack.config) as services:
        uri = stack.image("dropped.raw", 4 * MiB, slow=True)
        ids = await enqueue_download(services, uri)
        await _until_file(stack.root / "staging", f".{ids[0]}", ".download")
        async with _admin(stack.pg) as admin:
            dropped = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        assert dropped >= 1
        await _check_imported(stack, services, ids, stack.www / "dropped.raw")
