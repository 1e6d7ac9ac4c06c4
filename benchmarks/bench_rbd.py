"""Benchmark: writing a sparse raw image into one RBD store, three ways, in one run.

  ours    RbdStore.add: image created at full size, 4 aio_writes in flight, zero runs skipped
  qemu    qemu-img convert -f raw -O raw SRC rbd:images/NAME:conf=CONF (qemu-block-extra)
  glance  Glance-shaped: 8 MiB chunks read and written synchronously, zeros included

Prints seconds, ratios (ours vs each) and the bytes each leaves allocated: what the
BlueStore OSD really allocated (its perf counters), `rbd du`'s used size and librbd's
allocated extents. Starts its own throwaway cluster (deploy/dev/ceph-up.sh) with a
file-backed BlueStore OSD, so allocation is accounted as on a real disk.

Usage: .venv/bin/python benchmarks/bench_rbd.py [--virtual-gib 4] [--data-gib 1.5] [--small]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rados
import rbd

from flows.sparse import SparseFileReader
from flows.stores.rbd import RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from tests.support.images import MiB, make_sparse_raw, scattered_extents

GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parent.parent
CHUNK = 8 * MiB


def ours(conf: str, source: Path, name: str) -> None:
    store = RbdStore("bench", RbdStoreConfig(type="rbd", conf=conf, chunk_size=CHUNK))

    async def run() -> None:
        try:
            await store.add(name, SparseFileReader(source))
        finally:
            await store.close()

    asyncio.run(run())


def qemu(conf: str, source: Path, name: str) -> None:
    subprocess.run(
        [
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            str(source),
            f"rbd:images/{name}:conf={conf}",
        ],
        check=True,
    )


def glance_shaped(conf: str, source: Path, name: str) -> None:
    size = source.stat().st_size
    with rados.Rados(conffile=conf) as cluster, cluster.open_ioctx("images") as ioctx:
        rbd.RBD().create(ioctx, name, size, order=23, old_format=False, features=1)
        with rbd.Image(ioctx, name) as image, source.open("rb") as handle:
            offset = 0
            while chunk := handle.read(CHUNK):
                image.write(chunk, offset)
                offset += len(chunk)
            image.create_snap("snap")
            image.protect_snap("snap")


def bluestore_allocated(conf: str) -> int:
    (socket,) = Path(conf).parent.glob("run/osd.*.asok")
    dump = subprocess.run(
        ["ceph", "--admin-daemon", str(socket), "perf", "dump"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(json.loads(dump)["bluestore"]["bluestore_allocated"])


def allocation(conf: str, name: str) -> tuple[int, int]:
    report = json.loads(
        subprocess.run(
            ["rbd", "-c", conf, "-p", "images", "du", name, "--format", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    used = max(int(entry["used_size"]) for entry in report["images"])
    extents: list[int] = []
    with (
        rados.Rados(conffile=conf) as cluster,
        cluster.open_ioctx("images") as ioctx,
        rbd.Image(ioctx, name, read_only=True) as image,
    ):
        image.diff_iterate(0, image.size(), None, lambda o, n, e: extents.append(n) if e else None)
    return used, sum(extents)


def remove(conf: str, name: str) -> None:
    with rados.Rados(conffile=conf) as cluster, cluster.open_ioctx("images") as ioctx:
        with rbd.Image(ioctx, name) as image:
            for snap in list(image.list_snaps()):
                if image.is_protected_snap(snap["name"]):
                    image.unprotect_snap(snap["name"])
                image.remove_snap(snap["name"])
        rbd.RBD().remove(ioctx, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--virtual-gib", type=float, default=4.0)
    parser.add_argument("--data-gib", type=float, default=1.5)
    parser.add_argument("--small", action="store_true", help="512 MiB virtual, 192 MiB data")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each writer (median)")
    args = parser.parse_args()
    virtual = int((0.5 if args.small else args.virtual_gib) * GiB)
    data = int((0.1875 if args.small else args.data_gib) * GiB)
    with tempfile.TemporaryDirectory(prefix="bench-rbd-", dir=ROOT) as work_dir:
        work = Path(work_dir)
        source = work / "source.raw"
        written = make_sparse_raw(source, virtual, scattered_extents(virtual, data))
        env = dict(
            os.environ,
            CEPH_OBJECTSTORE="bluestore",
            CEPH_BLUESTORE_BYTES=str(2 * virtual + 4 * GiB),
        )
        clusters = work / "ceph"
        conf = subprocess.run(
            [str(ROOT / "deploy/dev/ceph-up.sh"), "1", str(clusters)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.split()[0]
        try:
            print(f"image: {virtual / GiB:.2f} GiB virtual, {written / GiB:.2f} GiB data")
            # A fresh memstore OSD pays for its first allocations: warm it up once, untimed.
            qemu(conf, source, "warmup")
            remove(conf, "warmup")
            writers = {"ours": ours, "qemu-img": qemu, "glance": glance_shaped}
            times: dict[str, list[float]] = {label: [] for label in writers}
            results: dict[str, tuple[float, int, int, int]] = {}
            for round_ in range(args.rounds):
                labels = list(writers)
                labels = labels[round_ % 3 :] + labels[: round_ % 3]  # rotate who goes first
                for label in labels:
                    subprocess.run(["sync"], check=False)
                    before = bluestore_allocated(conf)
                    started = time.perf_counter()
                    writers[label](conf, source, label)
                    times[label].append(time.perf_counter() - started)
                    used, allocated = allocation(conf, label)
                    real = bluestore_allocated(conf) - before
                    results[label] = (statistics.median(times[label]), real, used, allocated)
                    remove(conf, label)
            for label, (seconds, real, used, allocated) in results.items():
                print(
                    f"{label:9s} median {seconds:7.2f} s of {args.rounds}   pool allocated "
                    f"{real / MiB:8.1f} MiB   rbd du used {used / MiB:8.1f} MiB   "
                    f"extents {allocated / MiB:8.1f} MiB"
                )
            base = results["ours"][0]
            print(f"ratio ours/qemu-img: {base / results['qemu-img'][0]:.2f}")
            print(f"ratio ours/glance:   {base / results['glance'][0]:.2f}")
            print(
                f"data written by ours: {written / MiB:.1f} MiB (+ one {CHUNK // MiB} MiB chunk = "
                f"{(written + CHUNK) / MiB:.1f} MiB bound)"
            )
        finally:
            subprocess.run([str(ROOT / "deploy/dev/ceph-down.sh"), str(clusters)], check=False)


if __name__ == "__main__":
    main()
