"""Benchmark: the Image API under concurrent clients, imgworker against a live Glance 33.

Both sides in the same run, on this machine, driven by the same client code with the same
identity headers:
  ours    ``imgworker api`` + 2 ``imgworker run`` workers (PostgreSQL, RabbitMQ, 3 file stores)
  glance  Glance 33.0.0 from PyPI (../shared/bench/glance-peer/setup.sh: uwsgi, SQLite,
          three file stores, image_conversion), its imports running in the API process

Every request opens its own connection on both sides (the peer's uwsgi HTTP socket does not
keep connections alive, so reusing them would fail against it and favour us).

Workloads:
  imports  create + web-download import of N tiny images (1 MiB raw), C clients at once:
           images that became active per second, from the first create to the last import
           ended; imports that failed; API latency p50/p99 of the create and import calls
  shows    image-show of one image by 50 concurrent clients for S seconds: requests/s, p99
and the ratios ours/glance (for throughput, > 1 means ours is faster; for latency, < 1).

Usage: .venv/bin/python benchmarks/bench_api.py [--images 200] [--clients 16]
       [--show-clients 50] [--show-seconds 10] [--peer-dir bench-glance-peer]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.conftest import fresh_postgres
from tests.support.api import running_api
from tests.support.images import MiB, make_sparse_raw
from tests.support.web_source import web_source
from tests.support.workers import (
    Topology,
    delete_topology,
    free_port,
    running_workers,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "bench" / "glance-peer" / "setup.sh"
ARGS_PATIENCE_NOTE = "within --patience"
HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench",
    "X-User-Id": "bench",
    "X-Roles": "admin,member,reader",
}


@dataclass
class Figures:
    """One side's measurements."""

    images_per_second: float
    failed_imports: int
    call_p50_ms: float
    call_p99_ms: float
    shows_per_second: float
    show_p99_ms: float


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(latencies: list[float], call: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    result = await call()
    latencies.append(time.perf_counter() - started)
    return result


async def _import_one(
    session: aiohttp.ClientSession, api: str, uri: str, latencies: list[float]
) -> str:
    async def create() -> str:
        body = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
        async with session.post(f"{api}/v2/images", json=body, headers=HEADERS) as reply:
            assert reply.status == 201, await reply.text()
            return str((await reply.json())["id"])

    image_id = await _timed(latencies, create)

    async def start() -> None:
        body = {"method": {"name": "web-download", "uri": uri}, "stores": ["central"]}
        url = f"{api}/v2/images/{image_id}/import"
        async with session.post(url, json=body, headers=HEADERS) as reply:
            assert reply.status == 202, await reply.text()

    await _timed(latencies, start)
    return str(image_id)


async def _status(session: aiohttp.ClientSession, api: str, image_id: str) -> str:
    async with session.get(f"{api}/v2/images/{image_id}", headers=HEADERS) as reply:
        return str((await reply.json())["status"])


async def _outcome(
    session: aiohttp.ClientSession, api: str, image_id: str, deadline: float
) -> bool:
    """Wait for the image's import to end; True when the image became active.

    A failed import leaves imgworker's image ``failed`` and Glance's ``queued`` again: the
    task's status says it ended either way. An import still not ended at ``deadline`` counts
    as not done (Glance on SQLite may leave tasks pending for good).
    """
    while True:
        if await _status(session, api, image_id) == "active":
            return True
        async with session.get(f"{api}/v2/images/{image_id}/tasks", headers=HEADERS) as reply:
            tasks = (await reply.json()).get("tasks", [])
        if tasks and all(task["status"] in ("success", "failure") for task in tasks):
            return await _status(session, api, image_id) == "active"
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.1)


async def _imports(
    api: str, uri: str, count: int, clients: int, patience: float
) -> tuple[float, int, list[float]]:
    latencies: list[float] = []
    slots = asyncio.Semaphore(clients)
    connector = aiohttp.TCPConnector(limit=clients + 4, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> str:
            async with slots:
                return await _import_one(session, api, uri, latencies)

        started = time.perf_counter()
        ids = await asyncio.gather(*(one() for _ in range(count)))
        deadline = time.perf_counter() + patience
        active = [await _outcome(session, api, image_id, deadline) for image_id in ids]
        elapsed = time.perf_counter() - started
        return sum(active) / elapsed, count - sum(active), latencies


async def _shows(
    api: str, image_id: str, clients: int, seconds: float
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients + 4, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                await _timed(latencies, lambda: _status(session, api, image_id))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return len(latencies) / (time.perf_counter() - started), latencies


async def measure(api: str, uri: str, args: argparse.Namespace) -> Figures:
    rate, failed, calls = await _imports(api, uri, args.images, args.clients, args.patience)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{api}/v2/images?limit=1", headers=HEADERS) as reply,
    ):
        image_id = (await reply.json())["images"][0]["id"]
    shows, show_latencies = await _shows(api, image_id, args.show_clients, args.show_seconds)
    return Figures(
        images_per_second=rate,
        failed_imports=failed,
        call_p50_ms=statistics.median(calls) * 1000,
        call_p99_ms=_quantile(calls, 0.99) * 1000,
        shows_per_second=shows,
        show_p99_ms=_quantile(show_latencies, 0.99) * 1000,
    )


def _ours(stack: ExitStack, root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    database = stack.enter_context(fresh_postgres())
    topology = Topology()
    stack.callback(lambda: asyncio.run(delete_topology(topology)))
    config = write_config(root, database, topology, stores=("central", "dcn0", "dcn1"))
    with config.open("a") as extra:
        extra.write('\n[api]\nauth = "headers"\n')
    api = stack.enter_context(running_api(config, root))
    stack.enter_context(running_workers(config, root, 2))
    return api.url


def _peer(stack: ExitStack, directory: Path) -> str:
    port = free_port()
    # A fresh catalogue each run (the installed Glance is kept).
    (directory / "glance.sqlite").unlink(missing_ok=True)
    started = subprocess.run(
        ["bash", str(PEER), str(directory), str(port)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    pidfile = directory / "uwsgi.pid"
    stack.callback(lambda: _stop(pidfile))
    return started.stdout.strip().splitlines()[-1]


def _stop(pidfile: Path) -> None:
    if pidfile.exists():
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)
        time.sleep(1)


def _report(ours: Figures, glance: Figures) -> None:
    rows = [
        ("active images/s", ours.images_per_second, glance.images_per_second, "higher"),
        ("API call p50, ms", ours.call_p50_ms, glance.call_p50_ms, "lower"),
        ("API call p99, ms", ours.call_p99_ms, glance.call_p99_ms, "lower"),
        ("image-show, requests/s", ours.shows_per_second, glance.shows_per_second, "higher"),
        ("image-show p99, ms", ours.show_p99_ms, glance.show_p99_ms, "lower"),
    ]
    print(json.dumps({"imgworker": ours.__dict__, "glance": glance.__dict__}))
    print(f"{'':28s} {'imgworker':>10s} {'glance 33':>10s} {'ours/glance':>12s}")
    for label, mine, theirs, better in rows:
        ratio = f"{mine / theirs:11.2f}x" if theirs else f"{'n/a':>12s}"
        print(f"{label:28s} {mine:10.1f} {theirs:10.1f} {ratio}  ({better} is better)")
    print(
        f"imports not active (failed, or not ended {ARGS_PATIENCE_NOTE}): "
        f"imgworker {ours.failed_imports}, glance {glance.failed_imports}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--show-clients", type=int, default=50)
    parser.add_argument("--show-seconds", type=float, default=10.0)
    parser.add_argument(
        "--patience",
        type=float,
        default=300.0,
        help="seconds after the last import call before unfinished imports count as failed",
    )
    parser.add_argument("--peer-dir", type=Path, default=ROOT / "bench-glance-peer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        root = Path(scratch)
        www = root / "www"
        www.mkdir()
        make_sparse_raw(www / "tiny.raw", MiB, [(0, MiB)])
        with ExitStack() as stack:
            source = stack.enter_context(web_source(www))
            uri = f"{source}/tiny.raw"
            ours = asyncio.run(measure(_ours(stack, root / "ours"), uri, args))
        with ExitStack() as stack:
            source = stack.enter_context(web_source(www))
            peer = _peer(stack, args.peer_dir.absolute())
            glance = asyncio.run(measure(peer, f"{source}/tiny.raw", args))
    _report(ours, glance)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
