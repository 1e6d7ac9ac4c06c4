"""Benchmarks of edge sites: Ceph clusters behind rate-limited links (deploy/dev/ceph-up.sh).

``import`` (the default): the guide's chapter 2 — the same qcow2 imported into three sites
(central, dcn0, dcn1), written in turn (``[import] max_parallel_stores = 1``, the guide's
order) and all at once (``= 3``), rounds alternating, in this process (the embedded import,
SQLite). Prints each mode's median time for the store writes and for the whole import, the
ratio parallel/sequential, and how busy each site's link was while its store was written
(bytes sent / (rate x the step's window), from the link counters sampled every 50 ms).

``link``: one RBD write through one site's link against a cluster on 127.0.0.1 (the same
dense image), rounds alternating: each write's throughput, how busy the link was, the ratio.

Usage: .venv/bin/python benchmarks/bench_sites.py [import|link] [--rate 400mbit] [--mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.observer import NullObserver
from flows.sparse import SparseFileReader
from flows.states import StepResult
from flows.stores.rbd import RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from tests.support.ceph import LinkSample, Site
from tests.support.images import MiB, convert, make_sparse_raw
from worker.config.settings import Settings
from worker.tasks.embedded import delete_image, import_image
from worker.tasks.services import Services

ROOT = Path(__file__).resolve().parent.parent
UP, DOWN = ROOT / "deploy/dev/ceph-up.sh", ROOT / "deploy/dev/ceph-down.sh"


def start(count: int, directory: Path, rate: str | None) -> tuple[list[str], float]:
    """Start ``count`` clusters (sites when ``rate``); return their confs and the seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_SITE_RATE")}
    if rate:
        env["CEPH_SITE_RATE"] = rate
    started = time.perf_counter()
    confs = subprocess.run(
        [str(UP), str(count), str(directory)], check=True, capture_output=True, text=True, env=env
    ).stdout.split()
    return confs, time.perf_counter() - started


def write(conf: str, source: Path, site: Site | None = None) -> tuple[float, float]:
    """Write ``source`` into a new image with the rbd store, then discard it; return the
    seconds and how busy ``site``'s link was meanwhile (0 without a site)."""
    store = RbdStore("bench", RbdStoreConfig(type="rbd", conf=conf))
    name = str(uuid.uuid4())

    async def run() -> tuple[float, float]:
        try:
            await store.connect()
            before = site.sample() if site else None
            started = time.perf_counter()
            await store.add(name, SparseFileReader(source))
            seconds = time.perf_counter() - started
            busy = site.busy(before, site.sample()) if site and before else 0.0
            return seconds, busy
        finally:
            await store.discard(name)
            await store.close()

    return asyncio.run(run())


def link_benchmark(args: argparse.Namespace) -> None:
    """One site's link against a local cluster (see the module docstring)."""
    size = args.mib * MiB
    with tempfile.TemporaryDirectory(prefix="bench-sites-", dir=ROOT) as work_dir:
        work = Path(work_dir)
        source = work / "dense.raw"
        make_sparse_raw(source, size, [(0, size)])
        sites, local = work / "sites", work / "local"
        try:
            site_confs, up_seconds = start(args.sites, sites, args.rate)
            print(f"ceph-up.sh {args.sites} with CEPH_SITE_RATE={args.rate}: {up_seconds:.1f} s")
            (local_conf,), local_up = start(1, local, None)
            print(f"ceph-up.sh 1 on 127.0.0.1: {local_up:.1f} s")
            site = Site.load(Path(site_confs[0]).parent)
            assert site is not None
            targets = {"site": site_confs[0], "127.0.0.1": local_conf}
            for conf in targets.values():
                write(conf, source)  # a fresh memstore OSD pays for its first allocations
            seconds: dict[str, list[float]] = {label: [] for label in targets}
            busy: list[float] = []
            for _ in range(args.rounds):
                took, site_busy = write(targets["site"], source, site)
                seconds["site"].append(took)
                busy.append(site_busy)
                seconds["127.0.0.1"].append(write(targets["127.0.0.1"], source)[0])
            medians = {label: statistics.median(times) for label, times in seconds.items()}
            for label, median in medians.items():
                rate = size / median
                print(
                    f"{label:10s} {args.mib} MiB in {median:6.2f} s (median of {args.rounds}): "
                    f"{rate / MiB:7.1f} MiB/s = {rate * 8 / 1e6:7.0f} Mbit/s"
                )
            print(f"site link busy while written (median): {statistics.median(busy):.2f}")
            print(f"ratio site/127.0.0.1 time: {medians['site'] / medians['127.0.0.1']:.2f}")
        finally:
            subprocess.run([str(DOWN), str(sites)], check=False)
            subprocess.run([str(DOWN), str(local)], check=False)


class _StepClock(NullObserver):
    """Remembers when each step started and ended (monotonic seconds)."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[float, float]] = {}

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        if result in (StepResult.SUCCESS, StepResult.FAILURE):
            ended = time.monotonic()
            self.windows[step] = (ended - seconds, ended)


class _LinkRecorder:
    """Samples every site's link counters in a thread while an import runs."""

    def __init__(self, sites: dict[str, Site]) -> None:
        self._sites = sites
        self.samples: dict[str, list[LinkSample]] = {name: [] for name in sites}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link-sampler", daemon=True)

    def __enter__(self) -> _LinkRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, site in self._sites.items():
                self.samples[name].append(site.sample())
            self._stop.wait(0.05)

    def busy(self, name: str, window: tuple[float, float]) -> float:
        """How busy ``name``'s link was over ``window`` (nearest samples inside it)."""
        inside = [s for s in self.samples[name] if window[0] <= s.at <= window[1]]
        if len(inside) < 2:
            return float("nan")
        return self._sites[name].busy(inside[0], inside[-1])


def _site_settings(root: Path, confs: dict[str, str], parallel: int) -> Settings:
    stores: dict[str, Any] = {"default": "central"}
    for name, conf in confs.items():
        stores[name] = {"type": "rbd", "conf": conf, "operation_timeout": 120}
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite+aiosqlite:///{root / 'imgworker.db'}"},
            "staging": {"dir": str(root / "staging")},
            "stores": stores,
            "import": {"max_parallel_stores": parallel},
            "safety": {"staging_min_free_bytes": 0},
        }
    )


def _import_once(
    root: Path, confs: dict[str, str], sites: dict[str, Site], source: Path, parallel: int
) -> tuple[float, float, dict[str, float]]:
    """Import ``source`` into every site; return (import s, store writes s, busy by site)."""
    root.mkdir(parents=True, exist_ok=True)
    clock = _StepClock()

    async def run() -> float:
        services = await Services.open(_site_settings(root, confs, parallel), clock)
        try:
            started = time.perf_counter()
            result = await import_image(
                services, disk_format="qcow2", file=source, stores=list(confs)
            )
            took = time.perf_counter() - started
            assert result.outcome.status == "success", result.outcome.message
            assert sorted(result.image.stores) == sorted(confs), result.image
            await delete_image(services, result.image.id)
            return took
        finally:
            await services.close()

    with _LinkRecorder(sites) as links:
        took = asyncio.run(run())
    windows = {name: clock.windows[f"store:{name}"] for name in confs}
    first = min(start for start, _end in windows.values())
    last = max(end for _start, end in windows.values())
    busy = {name: links.busy(name, window) for name, window in windows.items()}
    return took, last - first, busy


def import_benchmark(args: argparse.Namespace) -> None:
    """Three sites, sequential against parallel (see the module docstring)."""
    names = ("central", "dcn0", "dcn1")
    with tempfile.TemporaryDirectory(prefix="bench-sites-", dir=ROOT) as work_dir:
        work = Path(work_dir)
        raw = work / "dense.raw"
        make_sparse_raw(raw, args.mib * MiB, [(0, args.mib * MiB)])
        source = work / "dense.qcow2"
        convert(raw, source, "raw", "qcow2")
        raw.unlink()
        clusters = work / "sites"
        try:
            site_confs, up_seconds = start(len(names), clusters, args.rate)
            print(f"ceph-up.sh {len(names)} with CEPH_SITE_RATE={args.rate}: {up_seconds:.1f} s")
            confs = dict(zip(names, site_confs, strict=True))
            sites = {}
            for name, conf in confs.items():
                site = Site.load(Path(conf).parent)
                assert site is not None
                sites[name] = site
            _import_once(work / "warm-up", confs, sites, source, 3)
            runs: dict[int, list[tuple[float, float, dict[str, float]]]] = {1: [], 3: []}
            for round_number in range(args.rounds):
                for parallel in (1, 3) if round_number % 2 == 0 else (3, 1):
                    root = work / f"round-{round_number}-{parallel}"
                    runs[parallel].append(_import_once(root, confs, sites, source, parallel))
            _report_imports(args, runs)
        finally:
            subprocess.run([str(DOWN), str(clusters)], check=False)


def _report_imports(
    args: argparse.Namespace, runs: dict[int, list[tuple[float, float, dict[str, float]]]]
) -> None:
    medians = {}
    for parallel, results in runs.items():
        whole = statistics.median(r[0] for r in results)
        stores = statistics.median(r[1] for r in results)
        busy = {name: statistics.median(r[2][name] for r in results) for name in results[0][2]}
        medians[parallel] = (whole, stores)
        shown = ", ".join(f"{name} {value:.2f}" for name, value in busy.items())
        print(
            f"max_parallel_stores={parallel}: store writes {stores:6.2f} s, import "
            f"{whole:6.2f} s (median of {len(results)}); link busy while written: {shown}"
        )
    print(
        f"parallel/sequential: store writes {medians[3][1] / medians[1][1]:.2f}, "
        f"whole import {medians[3][0] / medians[1][0]:.2f}  ({args.mib} MiB to 3 sites "
        f"at {args.rate})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=("import", "link"), default="import")
    parser.add_argument("--rate", default="400mbit", help="the sites' link rate (tc's units)")
    parser.add_argument("--sites", type=int, default=3, help="link: sites to start")
    parser.add_argument("--mib", type=int, default=256, help="MiB of data in the image")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians)")
    args = parser.parse_args()
    if args.mode == "link":
        link_benchmark(args)
    else:
        import_benchmark(args)


if __name__ == "__main__":
    main()
