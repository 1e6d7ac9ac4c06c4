"""Benchmark: 200 tiny imports (1 MiB raw, one file store) through 1 and then 4 workers.

Real RabbitMQ and PostgreSQL on this machine, workers as separate `imgworker run` processes.
Prints, per worker count: tasks per second (first enqueue to last task finished) and the
p50/p99 time from enqueue to start (each worker logs it from the message's publish time).
Enqueueing runs concurrently with the work, through one publisher connection, as an API
server would.

Usage: .venv/bin/python benchmarks/bench_daemon.py [--tasks 200] [--workers 1 4]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from flows.request import ImportRequest
from tests.support.http import serve_directory
from tests.support.images import MiB, make_sparse_raw
from tests.support.workers import Topology, delete_topology, running_workers, write_config
from worker.daemon.client import Publisher, enqueue_import
from worker.services import Services
from worker.settings import load_settings
from worker.submission import SubmissionRules

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
STARTED = re.compile(r"started after ([0-9.]+) s in the queue")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def run(count: int, workers: int, root: Path) -> tuple[float, list[float]]:
    name = f"imgworker_bench_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    topology = Topology()
    config = write_config(
        root,
        f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        topology,
        stores=("central",),
        concurrency=2,
    )
    www = root / "www"
    www.mkdir(exist_ok=True)
    make_sparse_raw(www / "disk.raw", MiB, [(0, MiB)])
    services = await Services.open(load_settings(str(config), environ={}))
    try:
        with running_workers(config, root, workers) as procs:
            async with serve_directory(www) as source, Publisher(services.settings.broker) as pub:
                request = ImportRequest(method="web-download", uri=f"{source}/disk.raw")
                rules = SubmissionRules.from_settings(services.settings)
                slots = asyncio.Semaphore(16)  # an API server's concurrent requests

                async def enqueue_one() -> str:
                    async with slots:
                        image = await services.images.create(
                            name="bench", disk_format="raw", container_format="bare"
                        )
                        return await enqueue_import(
                            services.records, rules, pub, image_id=image.id, request=request
                        )

                started = time.perf_counter()
                tasks = await asyncio.gather(*(enqueue_one() for _ in range(count)))
                for task_id in tasks:
                    while (await services.tasks.get(task_id)).status not in ("success", "failure"):
                        await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
            waits = [float(m) for p in procs for m in STARTED.findall(p.output())]
    finally:
        await services.close()
        await delete_topology(topology)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return count / elapsed, waits


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    results = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="bench-daemon-") as root:
            rate, waits = await run(args.tasks, workers, Path(root))
        results[workers] = rate
        p50, p99 = statistics.median(waits) * 1000, _quantile(waits, 0.99) * 1000
        print(
            f"{workers} worker(s): {rate:6.1f} tasks/s   enqueue->start p50 {p50:7.1f} ms"
            f"   p99 {p99:7.1f} ms   ({len(waits)} starts)"
        )
    if len(results) > 1:
        low, high = min(results), max(results)
        print(f"scaling {high}/{low} workers: {results[high] / results[low]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
