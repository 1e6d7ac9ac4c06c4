"""A start that cannot succeed ends in one line naming the setting, with a status systemd tells
apart: 2 for a refused configuration, 3 for an address that cannot be listened on (the units
restart on neither: deploy/systemd). Real processes, the real broker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require_tcp
from tests.support.workers import IMGWORKER, Topology, write_config
from worker.config.source import CANNOT_LISTEN, CONFIGURATION_REFUSED

#: A database URL nothing connects to: a start that ends before the records are opened.
UNUSED_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/imgworker_never_used"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Records in an SQLite file (no server needed before the broker is reached)."""
    return write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'records.db'}", Topology())


def start(command: str, config: Path, timeout: float = 60, **overrides: str) -> tuple[int, str]:
    """Run ``imgworker COMMAND`` until it exits; its status and what it wrote."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER")}
    env.update(IMGWORKER_CONFIG=str(config), **overrides)
    done = subprocess.run(
        [IMGWORKER, command], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.returncode, done.stderr


def records(stderr: str) -> list[dict[str, str]]:
    """The JSON log records; fails on any other line (a traceback would be one)."""
    return [json.loads(line) for line in stderr.splitlines()]


def test_a_worker_on_a_taken_port_says_so_in_one_line(config: Path, taken_port: int) -> None:
    status, stderr = start(
        "run",
        config,
        IMGWORKER_WORKER__HTTP=f'"127.0.0.1:{taken_port}"',
        IMGWORKER_DATABASE__URL=UNUSED_DATABASE,
    )
    assert status == CANNOT_LISTEN
    (line,) = stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("ERROR", "worker.daemon.app")
    assert record["message"] == (
        f"cannot start: [worker] http = '127.0.0.1:{taken_port}' cannot be listened on: the port "
        "is in use by another process (another worker or API on this host?); give this one a "
        "free port in [worker] http"
    )
    assert "exc" not in record


def test_an_api_on_a_taken_port_says_so_too(config: Path, taken_port: int) -> None:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    status, stderr = start("api", config, IMGWORKER_API__LISTEN=f'"127.0.0.1:{taken_port}"')
    assert status == CANNOT_LISTEN
    found = records(stderr)
    errors = [r for r in found if r["level"] == "ERROR"]
    assert [r["message"] for r in errors] == [
        f"cannot start: [api] listen = '127.0.0.1:{taken_port}' cannot be listened on: the port "
        "is in use by another process (another worker or API on this host?); give this one a "
        "free port in [api] listen"
    ]
    # SQLite for the API and its workers: loudly warned, naming the setting.
    assert any(
        r["level"] == "WARNING" and r["message"].startswith("[database] url is SQLite")
        for r in found
    )
    assert not any("exc" in r for r in found)


def test_a_wrong_virtual_host_is_named(config: Path) -> None:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    status, stderr = start(
        "run", config, IMGWORKER_BROKER__URL="amqp://guest:guest@127.0.0.1:5672/no-such-vhost"
    )
    assert status == CONFIGURATION_REFUSED
    errors = [r for r in records(stderr) if r["level"] == "ERROR"]
    assert [r["message"] for r in errors] == [
        "cannot start: the broker at amqp://guest:***@127.0.0.1:5672/no-such-vhost refused "
        "virtual host 'no-such-vhost': it does not exist, or user 'guest' may not use it; fix "
        "the virtual host (the path after the port) in [broker] url, or grant access: "
        "rabbitmqctl set_permissions -p no-such-vhost guest '.*' '.*' '.*'"
    ]


@pytest.mark.parametrize("command", ["run", "api"])
def test_wrong_credentials_are_named(config: Path, command: str) -> None:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    overrides = {"IMGWORKER_BROKER__URL": "amqp://guest:wrong@127.0.0.1:5672/"}
    if command == "api":
        overrides["IMGWORKER_API__LISTEN"] = '"127.0.0.1:0"'
    status, stderr = start(command, config, **overrides)
    assert status == CONFIGURATION_REFUSED
    errors = [r for r in records(stderr) if r["level"] == "ERROR"]
    assert [r["message"] for r in errors] == [
        "cannot start: the broker at amqp://guest:***@127.0.0.1:5672/ refused the user or "
        "password (ACCESS_REFUSED); fix the user and password in [broker] url"
    ]


def test_a_typo_stops_the_start_naming_the_key(config: Path) -> None:
    store = '[stores.dcn0]\ntype = "file"'
    config.write_text(config.read_text().replace(store, f"{store}\nchunk_sise = 1"))
    status, stderr = start("run", config, IMGWORKER_STORES__CENTRAL__PTH='"/srv"')
    assert status == CONFIGURATION_REFUSED
    assert (
        "stores.dcn0.chunk_sise: unknown key in [stores.dcn0]; did you mean chunk_size?" in stderr
    )
    assert (
        "stores.central.pth: unknown key in [stores.central] (set by "
        "IMGWORKER_STORES__CENTRAL__PTH); did you mean path?"
    ) in stderr
    assert "Traceback" not in stderr
