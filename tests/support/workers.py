"""Worker processes (``imgworker run``) for the daemon tests, each with its own port and id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

IMGWORKER = str(Path(sys.executable).with_name("imgworker"))


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Topology:
    """Unique broker names for one test (so runs never share a queue)."""

    prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}")

    @property
    def queue(self) -> str:
        """The task queue."""
        return f"{self.prefix}.tasks"

    @property
    def exchange(self) -> str:
        """The task exchange."""
        return self.prefix

    @property
    def dead_exchange(self) -> str:
        """The dead-letter exchange."""
        return f"{self.prefix}.dlx"

    @property
    def dead_queue(self) -> str:
        """The dead-letter queue."""
        return f"{self.prefix}.dead"


async def delete_topology(
    topology: Topology, url: str = "amqp://guest:guest@127.0.0.1:5672/"
) -> None:
    """Remove a test's queues and exchanges from the broker."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in (topology.queue, topology.dead_queue):
            await channel.queue_delete(queue)
        for exchange in (topology.exchange, topology.dead_exchange):
            await channel.exchange_delete(exchange)


def write_config(
    root: Path,
    database_url: str,
    topology: Topology,
    *,
    stores: tuple[str, ...] = ("central", "dcn0"),
    lease_seconds: float = 30,
    heartbeat_seconds: float = 1,
    drain_grace_seconds: float = 10,
    concurrency: int = 2,
    max_parallel_stores: int = 1,
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/",
    rbd: Mapping[str, Mapping[str, str | int | float]] | None = None,
) -> Path:
    """A TOML configuration shared by every worker of a test.

    The stores named in ``rbd`` are rbd stores with those keys (``conf``, ...); the others
    are file stores under ``root/stores``.
    """
    rbd = rbd or {}
    lines = [
        f'[database]\nurl = "{database_url}"',
        f'[broker]\nurl = "{broker_url}"\n'
        f'queue = "{topology.queue}"\nexchange = "{topology.exchange}"\n'
        f'dead_letter_exchange = "{topology.dead_exchange}"\n'
        f'dead_letter_queue = "{topology.dead_queue}"\ndelivery_limit = 5',
        f"[worker]\nconcurrency = {concurrency}\nlease_seconds = {lease_seconds}\n"
        f"heartbeat_seconds = {heartbeat_seconds}\ndrain_grace_seconds = {drain_grace_seconds}",
        f'[staging]\ndir = "{root / "staging"}"',
        f"[import]\nmax_parallel_stores = {max_parallel_stores}",
        f'[stores]\ndefault = "{stores[0]}"',
        *(
            _table(f"stores.{s}", {"type": "rbd", **rbd[s]})
            if s in rbd
            else f'[stores.{s}]\ntype = "file"\npath = "{root / "stores" / s}"'
            for s in stores
        ),
        "[safety]\nallow_private_addresses = true\nallowed_ports = []\nstaging_min_free_bytes = 0",
    ]
    path = root / "worker.toml"
    path.write_text("\n\n".join(lines) + "\n")
    return path


def _table(name: str, values: Mapping[str, str | int | float]) -> str:
    """A TOML table of strings and numbers (JSON spells both as TOML does)."""
    return "\n".join([f"[{name}]", *(f"{key} = {json.dumps(v)}" for key, v in values.items())])


@dataclass
class Worker:
    """One running ``imgworker run``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """Base URL of its HTTP endpoints."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        return self.get("/readyz")[0] == 200

    def live(self) -> bool:
        """True when /livez answers 200."""
        return self.get("/livez")[0] == 200

    def get(self, path: str) -> tuple[int, str]:
        """The status and body of ``GET path`` (0 and the error when nothing answers)."""
        try:
            with urlopen(f"{self.url}{path}", timeout=2) as response:
                return int(response.status), response.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def metrics(self) -> str:
        """The /metrics text."""
        with urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def signal(self, signum: int) -> None:
        """Send a signal."""
        self.process.send_signal(signum)

    def output(self) -> str:
        """Everything it logged."""
        return self.log.read_text(errors="replace")

    def json_records(self) -> list[dict[str, Any]]:
        """Everything it logged, failing unless every line is a JSON object."""
        records = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise AssertionError(f"worker {self.name} wrote a line that is not JSON: {line}")
            records.append(record)
        return records


def start_worker(
    config: Path,
    name: str,
    root: Path,
    *,
    http_host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    until: str | None = "ready",
) -> Worker:
    """Start a worker; wait until it is ready (or only live: ``until="live"``; or not at all:
    ``until=None``).

    ``http_host`` is where its HTTP endpoints listen (0.0.0.0 reaches it from elsewhere; its
    ``url`` stays on loopback); ``env`` adds environment variables (settings overrides).
    """
    port = free_port()
    log = root / f"{name}.log"
    environment = dict(
        os.environ,
        IMGWORKER_CONFIG=str(config),
        IMGWORKER_WORKER__HTTP=f'"{http_host}:{port}"',
        IMGWORKER_WORKER__ID=f'"{name}"',
        **(env or {}),
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [IMGWORKER, "run"], env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    worker = Worker(name, port, process, log)
    if until is not None:
        wait_until(worker, until)
    return worker


def wait_until(worker: Worker, until: str = "ready") -> None:
    """Wait until ``worker`` is ready (or only live: ``until="live"``); fail after 60 s."""
    check = worker.ready if until == "ready" else worker.live
    deadline = time.monotonic() + 60
    while not check():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker {worker.name} did not become {until}:\n{worker.output()}")
        time.sleep(0.2)


@contextmanager
def running_workers(
    config: Path, root: Path, count: int, *, at_once: bool = False, **options: Any
) -> Iterator[list[Worker]]:
    """Start ``count`` workers (``options`` as :func:`start_worker` takes them); stop whatever
    still runs at the end (SIGKILL after 20 s).

    ``at_once`` starts them all before waiting for any: only for a database whose schema is
    up to date already (a worker upgrades one that is behind, and two must not at once).
    """
    until = options.pop("until", "ready")
    workers: list[Worker] = []
    try:
        for index in range(count):
            first_wait = None if at_once else until
            workers.append(start_worker(config, f"w{index}", root, until=first_wait, **options))
        if at_once and until is not None:
            for worker in workers:
                wait_until(worker, until)
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
