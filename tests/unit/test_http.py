"""The HTTP endpoints on a real aiohttp server: liveness, metrics, readiness reasons, drain."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import require_program
from tests.support.settings import make_settings
from worker.config.address import local_url, parse_address
from worker.config.settings import Settings
from worker.daemon import http as daemon_http
from worker.daemon.http import (
    DRAIN_REFUSED,
    Health,
    bound_address,
    drain_permitted,
    start_http,
)
from worker.daemon.metrics import Metrics


@dataclass
class Server:
    """A running endpoint server and the knobs a test turns."""

    url: str
    health: Health
    metrics: Metrics
    drains: list[None] = field(default_factory=list)
    database_error: BaseException | None = None
    database_hangs: bool = False

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()

    async def not_ready(self) -> list[str]:
        """The reasons /readyz gives, one per line; fails unless it answers 503."""
        status, body = await self.get("/readyz")
        assert status == 503, body
        return body.splitlines()


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start servers on 127.0.0.1:0; all are stopped after the test."""
    runners: list[web.AppRunner] = []

    async def start(
        staging: dict[str, Any] | None = None, safety: dict[str, Any] | None = None
    ) -> Server:
        settings: Settings = make_settings(
            tmp_path, worker={"http": "127.0.0.1:0"}, staging=staging or {}, safety=safety or {}
        )
        settings.staging.dir.mkdir(parents=True, exist_ok=True)
        metrics = Metrics(staging_dir=settings.staging.dir)
        health = Health(consumer_attached=True)
        server = Server(url="", health=health, metrics=metrics)

        async def check_database() -> None:
            if server.database_hangs:
                await asyncio.Event().wait()
            if server.database_error is not None:
                raise server.database_error

        runner = await start_http(
            settings, metrics, health, check_database, lambda: server.drains.append(None)
        )
        runners.append(runner)
        host, port = bound_address(runner)
        server.url = f"http://{host}:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _qemu_img() -> None:
    require_program("qemu-img", "qemu-utils")


async def test_port_zero_binds_a_real_port(serve: ServerFactory) -> None:
    server = await serve()
    assert not server.url.endswith(":0")
    assert await server.get("/livez") == (200, "ok\n")


async def test_metrics_are_parsable_prometheus_text(serve: ServerFactory) -> None:
    server = await serve()
    server.metrics.task_received("glance-direct")
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + "/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    (received,) = [
        s for s in families["imgworker_tasks_received"].samples if s.name.endswith("_total")
    ]
    assert received.labels == {"method": "glance-direct"} and received.value == 1
    assert families["imgworker_staging_free_bytes"].samples[0].value > 0


async def test_ready_when_every_check_passes(serve: ServerFactory) -> None:
    server = await serve()
    assert await server.get("/readyz") == (200, "ready\n")


async def test_draining_is_not_ready(serve: ServerFactory) -> None:
    server = await serve()
    server.health.draining = True
    assert await server.get("/readyz") == (503, "draining\n")


async def test_detached_consumer_is_not_ready(serve: ServerFactory) -> None:
    server = await serve()
    server.health.consumer_attached = False
    assert await server.get("/readyz") == (503, "consumer not attached\n")


async def test_database_error_is_reported(serve: ServerFactory) -> None:
    server = await serve()
    server.database_error = ConnectionRefusedError("connect to 127.0.0.1:5432 refused\nretry")
    assert await server.not_ready() == [
        "database unreachable: ConnectionRefusedError: connect to 127.0.0.1:5432 refused retry"
    ]


async def test_database_that_never_answers_is_unreachable(
    serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_http, "DATABASE_TIMEOUT_SECONDS", 0.05)
    server = await serve()
    server.database_hangs = True
    (line,) = await server.not_ready()
    assert line.startswith("database unreachable: no answer within")


async def test_missing_staging_directory(serve: ServerFactory, tmp_path: Path) -> None:
    server = await serve()
    shutil.rmtree(tmp_path / "staging")
    assert await server.not_ready() == [
        f"staging directory {tmp_path / 'staging'} is missing; create it or change [staging] dir"
    ]


async def test_staging_that_is_a_file(serve: ServerFactory, tmp_path: Path) -> None:
    server = await serve()
    (tmp_path / "staging").rmdir()
    (tmp_path / "staging").write_bytes(b"")
    (line,) = await server.not_ready()
    assert line.endswith("is not a directory; change [staging] dir")


async def test_unwritable_staging_directory(serve: ServerFactory) -> None:
    # /proc refuses new files even to root, where a chmod would not stop the test user.
    server = await serve(staging={"dir": "/proc"})
    (line,) = await server.not_ready()
    assert line.startswith("staging directory /proc is not writable: ")


async def test_free_space_below_the_reserve(serve: ServerFactory) -> None:
    server = await serve(safety={"staging_min_free_bytes": 2**62})
    (line,) = await server.not_ready()
    assert "bytes free, below [safety] staging_min_free_bytes = 4611686018427387904" in line


async def test_qemu_img_absent(serve: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await serve()
    monkeypatch.setenv("PATH", "/nonexistent")
    assert await server.not_ready() == [
        "qemu-img is not installed; install it with: apt-get install qemu-utils"
    ]


async def test_every_failed_check_gets_its_line(
    serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(safety={"staging_min_free_bytes": 2**62})
    server.health.consumer_attached = False
    server.database_error = OSError("down")
    monkeypatch.setenv("PATH", "/nonexistent")
    lines = await server.not_ready()
    assert len(lines) == 4
    assert lines[0] == "consumer not attached"
    assert lines[1] == "database unreachable: OSError: down"
    assert "staging_min_free_bytes" in lines[2]
    assert lines[3].startswith("qemu-img is not installed")


async def test_what_the_start_waits_for_is_named_first(serve: ServerFactory) -> None:
    server = await serve()
    server.health.consumer_attached = False
    server.health.waiting["broker"] = "broker unreachable at amqp://127.0.0.1:1/: refused"
    assert await server.not_ready() == [
        "broker unreachable at amqp://127.0.0.1:1/: refused",
        "consumer not attached",
    ]
    assert await server.get("/livez") == (200, "ok\n")


async def test_a_database_waited_for_is_not_probed_again(serve: ServerFactory) -> None:
    server = await serve()
    server.database_error = OSError("would be a second line")
    server.health.waiting["database"] = "database unreachable at postgresql://db/x: refused"
    assert await server.not_ready() == ["database unreachable at postgresql://db/x: refused"]


async def test_post_drain_calls_back(serve: ServerFactory) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/drain") as response:
            assert response.status == 202
        async with session.get(server.url + "/drain") as response:
            assert response.status == 405
    assert server.drains == [None]


async def test_everything_but_drain_is_read_only(serve: ServerFactory) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for path in ("/metrics", "/livez", "/readyz"):
                async with session.request(method, server.url + path) as response:
                    assert response.status == 405, (method, path)
        for method in ("PUT", "DELETE", "PATCH"):
            async with session.request(method, server.url + "/drain") as response:
                assert response.status == 405, method
    assert server.drains == []


TOKEN = "s3cret-token-of-32-characters-ok"


@pytest.mark.parametrize(
    ("remote", "authorization", "token", "permitted"),
    [
        ("127.0.0.1", None, None, True),
        ("127.8.9.10", None, None, True),
        ("::1", None, None, True),
        ("::ffff:127.0.0.1", None, None, True),
        ("10.1.2.3", None, None, False),
        ("10.1.2.3", f"Bearer {TOKEN}", None, False),
        ("10.1.2.3", None, TOKEN, False),
        ("10.1.2.3", f"Bearer {TOKEN}", TOKEN, True),
        ("10.1.2.3", f"bearer  {TOKEN}", TOKEN, True),
        ("10.1.2.3", f"Bearer {TOKEN}x", TOKEN, False),
        ("10.1.2.3", f"Basic {TOKEN}", TOKEN, False),
        ("10.1.2.3", "Bearer ", TOKEN, False),
        ("::ffff:10.1.2.3", None, None, False),
        ("fe80::1%eth0", None, None, False),
        (None, None, None, False),
        ("not an address", None, None, False),
    ],
)
def test_who_may_drain(
    remote: str | None, authorization: str | None, token: str | None, permitted: bool
) -> None:
    assert drain_permitted(remote, authorization, token) is permitted


def test_the_refusal_says_how_to_drain() -> None:
    assert "loopback" in DRAIN_REFUSED and "drain_token" in DRAIN_REFUSED


def test_a_short_drain_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        make_settings(tmp_path, worker={"drain_token": "short"})


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:9480") == ("127.0.0.1", 9480)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address(":9480") == ("0.0.0.0", 9480)
    with pytest.raises(ValueError, match="not host:port"):
        parse_address("localhost")
    with pytest.raises(ValueError, match="not host:port"):
        parse_address("localhost:http")


def test_local_url_reaches_a_wildcard_listener_over_loopback() -> None:
    assert local_url("0.0.0.0:9480") == "http://127.0.0.1:9480"
    assert local_url(":9480") == "http://127.0.0.1:9480"
    assert local_url("[::]:9292") == "http://[::1]:9292"
    assert local_url("10.0.0.5:9480") == "http://10.0.0.5:9480"
