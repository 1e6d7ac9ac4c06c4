"""A worker started before its broker or database waits for it; one they refuse exits at once.

"Not yet there" is a real outage: the worker's URL points at a TCP proxy of the test's own
(tests/support/proxy.py) that is stopped — nothing listens — and then started, forwarding to
the real RabbitMQ or PostgreSQL. The shared services themselves are never stopped.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.proxy import TcpProxy, tcp_proxy
from tests.support.tasks import enqueue_download, opened, terminal
from tests.support.workers import Topology, Worker, start_worker, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def stopped_broker() -> Iterator[TcpProxy]:
    with tcp_proxy("127.0.0.1", 5672) as proxy:
        yield proxy


@pytest.fixture
def stopped_database() -> Iterator[TcpProxy]:
    with tcp_proxy("127.0.0.1", 5432) as proxy:
        yield proxy


def _through(proxy: TcpProxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    if url.startswith("amqp"):
        return f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


async def _waits(worker: Worker, dependency: str) -> None:
    """The worker is alive, not ready, names ``dependency`` and has retried at least twice."""
    deadline = time.monotonic() + 60
    while worker.output().count(f"{dependency} unreachable at") < 2:
        assert worker.process.poll() is None, worker.output()
        assert time.monotonic() < deadline, f"no retries logged:\n{worker.output()}"
        await asyncio.sleep(0.2)
    assert await asyncio.to_thread(worker.get, "/livez") == (200, "ok\n")
    status, body = await asyncio.to_thread(worker.get, "/readyz")
    assert status == 503
    assert f"{dependency} unreachable at" in body and "next in" in body


async def _ready(worker: Worker) -> None:
    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(worker.ready):
        assert worker.process.poll() is None, worker.output()
        assert time.monotonic() < deadline, f"never ready:\n{worker.output()}"
        await asyncio.sleep(0.2)


def _stop(worker: Worker) -> int:
    if worker.process.poll() is None:
        worker.signal(signal.SIGTERM)
    return worker.process.wait(30)


@pytest.mark.parametrize("dependency", ["broker", "database"])
async def test_a_worker_started_before_its_dependency_waits_then_consumes(
    tmp_path: Path,
    postgres_url: str,
    broker_topology: Topology,
    small_image_source: str,
    stopped_broker: TcpProxy,
    stopped_database: TcpProxy,
    dependency: str,
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    proxy, variable, url = {
        "broker": (stopped_broker, "IMGWORKER_BROKER__URL", "amqp://"),
        "database": (stopped_database, "IMGWORKER_DATABASE__URL", postgres_url),
    }[dependency]
    env = {variable: f'"{_through(proxy, url)}"'}
    worker = start_worker(config, "w0", tmp_path, env=env, until="live")
    try:
        await _waits(worker, dependency)
        proxy.start()
        await _ready(worker)
        async with opened(config) as services:
            _image, task_id = await enqueue_download(services, f"{small_image_source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
    finally:
        assert _stop(worker) == 0
    records = worker.json_records()
    assert not [r for r in records if "exc" in r], "a traceback was logged"
    waits = [r for r in records if r["message"].startswith(f"{dependency} unreachable at")]
    assert all(r["level"] == "WARNING" and "next in" in r["message"] for r in waits)


async def test_a_waiting_worker_stops_on_sigterm(
    tmp_path: Path, postgres_url: str, broker_topology: Topology, stopped_broker: TcpProxy
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    env = {"IMGWORKER_BROKER__URL": f'"{_through(stopped_broker, "amqp://")}"'}
    worker = start_worker(config, "w0", tmp_path, env=env, until="live")
    await _waits(worker, "broker")
    assert _stop(worker) == 0
    assert worker.json_records()[-1]["message"] == "worker stopped"


@pytest.mark.parametrize(
    ("variable", "url", "words"),
    [
        ("IMGWORKER_BROKER__URL", "amqp://nope:nope@127.0.0.1:5672/", "ACCESS_REFUSED"),
        ("IMGWORKER_BROKER__URL", "amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "broker"),
        ("IMGWORKER_DATABASE__URL", "postgresql+asyncpg://nope@127.0.0.1:5432/test", '"nope"'),
        (
            "IMGWORKER_DATABASE__URL",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_database",
            "no_such_database",
        ),
    ],
)
async def test_a_refused_configuration_exits_with_one_line(
    tmp_path: Path,
    postgres_url: str,
    broker_topology: Topology,
    variable: str,
    url: str,
    words: str,
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    worker = start_worker(config, "w0", tmp_path, env={variable: f'"{url}"'}, until=None)
    assert worker.process.wait(60) == 2
    records = worker.json_records()
    (error,) = [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
    assert error["message"].startswith("cannot start: the ") and "refused" in error["message"]
    assert words in error["message"] and "fix the " in error["message"]
    assert "nope:nope" not in error["message"]
    assert not [r for r in records if "exc" in r], "a traceback was logged"
