"""Benchmark: web-download import of a 4 GiB-virtual qcow2 into three file stores.

Prints, measured in one run on this machine:
  ours      ``imgworker import --uri ... --stores s1,s2,s3`` (a subprocess, as a user runs it)
  naive     Glance's shape with its defaults: download the whole file, ``qemu-img convert`` to a
            second file, then for each store read every byte of the raw file, hash it with md5
            and sha512 in one thread and write every byte, zeros included
  floor     one ``qemu-img convert`` of the staged file plus md5+sha512 of the raw data
            (two threads, holes fed as zeros)
and the ratios, plus the worker's peak RSS (VmHWM of the imgworker process).

Usage: .venv/bin/python benchmarks/bench_import.py [--virtual-gib 4] [--data-gib 1.5] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import contextlib

from tests.support.images import MiB, make_sample_qcow2, sha512_of

NAIVE_CHUNK = 8 * MiB  # generous to the baseline: Glance's file store uses 64 KiB


def serve(directory: Path) -> tuple[int, threading.Thread]:
    """Serve ``directory`` over HTTP on a loopback port from a thread (sendfile-backed)."""
    ready = threading.Event()
    port_box: list[int] = []

    def run() -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_static("/", directory)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port_box.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    return port_box[0], thread


def drop_caches_best_effort() -> None:
    """Start each contender with the same cold-ish page cache where the kernel allows it."""
    subprocess.run(["sync"], check=False)
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run_ours(work: Path, url: str, stores: list[str]) -> tuple[float, int, str]:
    config = work / "bench.toml"
    lines = [
        f'[database]\nurl = "sqlite+aiosqlite:///{work}/bench.db"',
        f'[staging]\ndir = "{work}/staging"',
        "[safety]\nallow_private_addresses = true\nallowed_ports = []\nstaging_min_free_bytes = 0",
        f'[stores]\ndefault = "{stores[0]}"',
    ]
    lines += [f'[stores.{s}]\ntype = "file"\npath = "{work}/ours/{s}"' for s in stores]
    config.write_text("\n\n".join(lines) + "\n")
    imgworker = Path(sys.executable).parent / "imgworker"
    started = time.monotonic()
    process = subprocess.Popen(
        [
            str(imgworker),
            "--config",
            str(config),
            "import",
            "--uri",
            url,
            "--disk-format",
            "qcow2",
            "--stores",
            ",".join(stores),
            "--no-allow-failure",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"imgworker import failed:\n{err.decode()}")
    return elapsed, peak, json.loads(out)["os_hash_value"]


def run_naive(work: Path, url: str, stores: list[str]) -> tuple[float, str]:
    import urllib.request

    started = time.monotonic()
    staged = work / "naive" / "staged.qcow2"
    staged.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url) as response, open(staged, "wb") as out:
        shutil.copyfileobj(response, out, NAIVE_CHUNK)
    raw = work / "naive" / "converted.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(staged), str(raw)], check=True
    )
    sha512 = ""
    for store in stores:
        target = work / "naive" / store
        md5, sha = hashlib.md5(), hashlib.sha512()
        with open(raw, "rb") as source, open(target, "wb") as sink:
            while chunk := source.read(NAIVE_CHUNK):
                md5.update(chunk)
                sha.update(chunk)
                sink.write(chunk)
            sink.flush()
            os.fsync(sink.fileno())
        sha512 = sha.hexdigest()
    return time.monotonic() - started, sha512


def run_floor(work: Path, staged: Path) -> float:
    from flows.hashing import digest_file

    raw = work / "floor.raw"
    started = time.monotonic()
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(staged), str(raw)], check=True
    )
    threads = [threading.Thread(target=digest_file, args=(raw, algo)) for algo in ("md5", "sha512")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--virtual-gib", type=float, default=4.0)
    parser.add_argument("--data-gib", type=float, default=1.5)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="imgworker-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    served = work / "served"
    served.mkdir(exist_ok=True)
    image = served / "disk.qcow2"
    if not image.exists():
        print(
            f"generating {args.virtual_gib} GiB-virtual qcow2 with {args.data_gib} GiB of data..."
        )
        make_sample_qcow2(
            image, int(args.virtual_gib * 1024) * MiB, int(args.data_gib * 1024) * MiB
        )
    print(f"image: {image} ({image.stat().st_size / 1e9:.2f} GB qcow2)")
    port, _ = serve(served)
    url = f"http://127.0.0.1:{port}/disk.qcow2"
    stores = ["central", "dcn0", "dcn1"]
    try:
        drop_caches_best_effort()
        ours, peak, ours_hash = run_ours(work, url, stores)
        shutil.rmtree(work / "ours", ignore_errors=True)
        drop_caches_best_effort()
        naive, naive_hash = run_naive(work, url, stores)
        staged = work / "naive" / "staged.qcow2"
        for store in stores:
            (work / "naive" / store).unlink()
        drop_caches_best_effort()
        floor = run_floor(work, staged)
        expected = sha512_of(work / "floor.raw")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    assert ours_hash == naive_hash == expected, "os_hash_value differs between contenders"
    print(f"ours  (imgworker import, 3 stores):  {ours:7.1f} s   peak RSS {peak / MiB:.0f} MiB")
    print(f"naive (Glance-shaped serial):        {naive:7.1f} s")
    print(f"floor (convert + one hash pass):     {floor:7.1f} s")
    print(
        f"ours / naive = {ours / naive:.2f}   ours / floor = {ours / floor:.2f}   "
        f"naive / floor = {naive / floor:.2f}"
    )


if __name__ == "__main__":
    main()
