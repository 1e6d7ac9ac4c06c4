"""Benchmark: an RBD write through a rate-limited edge site's link vs a 127.0.0.1 cluster.

Starts N edge sites (``CEPH_SITE_RATE``, deploy/dev/ceph-up.sh) and times it, then one
cluster on 127.0.0.1, and writes the same dense image (non-zero data, so nothing is skipped)
with the rbd store into the first site and into the local cluster, rounds alternating,
after one untimed warm-up write each. Prints the start-up time, each write's median
throughput, how busy the site's link was while written (bytes sent / (rate x window)) and
the ratio local/site.

Usage: .venv/bin/python benchmarks/bench_sites.py [--rate 400mbit] [--sites 3] [--mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.sparse import SparseFileReader
from flows.stores.rbd import RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from tests.support.ceph import Site
from tests.support.images import MiB, make_sparse_raw

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", default="400mbit", help="the sites' link rate (tc's units)")
    parser.add_argument("--sites", type=int, default=3, help="sites to start (one is written)")
    parser.add_argument("--mib", type=int, default=256, help="MiB of data in the image")
    parser.add_argument("--rounds", type=int, default=3, help="writes to each cluster (median)")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
