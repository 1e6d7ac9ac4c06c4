"""Benchmark: 200 tiny imports (1 MiB raw, one file store) through the daemon's workers.

Real RabbitMQ and PostgreSQL on this machine, workers as separate `imgworker run` processes.
Prints, per worker count: tasks per second (first enqueue to last task finished) and the
p50/p99 time from enqueue to start (each worker logs it from the message's publish time).
Enqueueing runs concurrently with the work, through one publisher connection, as an API
server would.

In the same run, rounds alternating, it measures two baselines with the same worker count:
the code of ``--baseline`` (default: the commit before issue 11's daemon work), checked out
in a temporary ``git worktree`` and run by its own copy of this script, and the bare floor
of ``daemon_floor.py`` (a consumer doing one transaction per message and acking). Prints
ours / baseline and ours / floor.

Usage: .venv/bin/python benchmarks/bench_daemon.py [--tasks 200] [--workers 2] [--rounds 3]
       [--baseline a47ea2e | --baseline none]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from benchmarks import daemon_floor
from flows.request import ImportRequest
from tests.support.http import serve_directory
from tests.support.images import MiB, make_sparse_raw
from tests.support.workers import Topology, delete_topology, running_workers, write_config
from worker.config.settings import load_settings
from worker.daemon.client import Publisher, enqueue_import
from worker.db.catalog import NewImage
from worker.tasks.services import Services
from worker.tasks.submission import SubmissionRules

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
STARTED = re.compile(r"started after ([0-9.]+) s in the queue")
REPORTED = re.compile(
    r"(\d+) worker\(s\):\s+([0-9.]+) tasks/s\s+enqueue->start p50\s+([0-9.]+) ms\s+p99\s+([0-9.]+)"
)
ROOT = Path(__file__).resolve().parent.parent
#: The daemon before issue 11 batched its transactions.
BEFORE = "a47ea2e"


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
                        image = await services.records.catalog.create(
                            NewImage(
                                owner=None, name="bench", disk_format="raw", container_format="bare"
                            )
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


@contextmanager
def _checkout(commit: str) -> Iterator[Path]:
    """The tree of ``commit`` in a temporary worktree."""
    with tempfile.TemporaryDirectory(prefix="bench-daemon-baseline-") as parent:
        tree = Path(parent) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), commit],
            check=True,
        )
        _entry_point_shim(tree)
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )


def _entry_point_shim(tree: Path) -> None:
    """Let this venv's ``imgworker`` script start an older tree's workers.

    The script calls ``worker.commands:run`` (since 78affdf); before that it called
    ``worker.commands:main``, which ``run`` now wraps. An older tree gets ``run = main`` in
    its temporary checkout: what its own script called, nothing else changed.
    """
    commands = tree / "worker" / "commands.py"
    text = commands.read_text()
    if "\ndef run(" not in text:
        commands.write_text(text + "\n\nrun = main  # added by bench_daemon (_entry_point_shim)\n")


def _run_baseline(tree: Path, tasks: int, workers: int) -> tuple[float, float, float]:
    """tasks/s, p50 and p99 (ms) of the baseline's own benchmark, its code on the path."""
    # `imgworker` imports `worker` from PYTHONPATH first: the workers run the old code too.
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "bench_daemon.py"), "--tasks", str(tasks),
         "--workers", str(workers)],
        env=env, cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = REPORTED.search(done.stdout)
    if found is None:
        raise RuntimeError(f"the baseline's benchmark printed no result:\n{done.stdout}")
    return float(found[2]), float(found[3]), float(found[4])


async def _floor(tasks: int, workers: int) -> float:
    name = f"imgworker_floor_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        return await daemon_floor.measure(
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", tasks, workers, prefetch=2
        )
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BEFORE, help="a commit, or 'none'")
    args = parser.parse_args()
    with _checkout(args.baseline) if args.baseline != "none" else _nothing() as tree:
        for workers in args.workers:
            ours, before, floor = [], [], []
            waits: list[float] = []
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory(prefix="bench-daemon-") as root:
                    rate, round_waits = await run(args.tasks, workers, Path(root))
                ours.append(rate)
                waits += round_waits
                if tree is not None:
                    before.append(_run_baseline(tree, args.tasks, workers))
                floor.append(await _floor(args.tasks, workers))
            rate = statistics.median(ours)
            p50, p99 = statistics.median(waits) * 1000, _quantile(waits, 0.99) * 1000
            print(
                f"{workers} worker(s): {rate:6.1f} tasks/s   enqueue->start p50 {p50:7.1f} ms"
                f"   p99 {p99:7.1f} ms   ({len(waits)} starts, {args.rounds} round(s))"
            )
            if before:
                old = statistics.median(r[0] for r in before)
                old_p99 = statistics.median(r[2] for r in before)
                print(
                    f"  before ({args.baseline}): {old:6.1f} tasks/s   p99 {old_p99:7.1f} ms"
                    f"   ours / before = {rate / old:.2f}x"
                )
            bare = statistics.median(floor)
            print(f"  floor: {bare:6.1f} tasks/s   ours / floor = {rate / bare:.2f}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    asyncio.run(main())
