"""Benchmark: one web-download import of a qcow2 into three file stores, against live Glance 33.

The image (1 GiB virtual, ~400 MiB of data in scattered extents) is served over loopback HTTP
and imported into three file stores, converted to raw, with each side's defaults:

  ours    ``imgworker import --uri URL --stores central,dcn0,dcn1`` as a subprocess (what a
          user runs: interpreter start, records, the whole flow)
  glance  a live Glance 33.0.0 from PyPI (shared/bench/glance-peer/setup.sh: uwsgi, SQLite,
          three file stores, image_conversion to raw), timed by its import.py from the import
          call until the task ends, allow-failure as on our side
  service ours as Glance runs, a service: ``imgworker api`` and one ``imgworker run``
          (PostgreSQL, RabbitMQ, defaults otherwise), driven by the same import.py as Glance,
          from the import call until the task ends (no process started per import)
  floor   the work itself, done by plain tools in this process: one download (curl), one
          ``qemu-img convert`` into store 1, the store writes the disk must do (``cp
          --sparse=always`` into stores 2 and 3, then fsync of all three), and one hash pass
          (md5 and sha512 in two threads) running at the same time as those writes

Rounds are interleaved (ours, glance, floor, ours, ...) and each contender's median is used.
Every run starts with the page cache warm (the served image, the programs) and nothing dirty
(``sync`` first): Glance is a running server whose code is loaded, and a user's second
``imgworker`` command finds its modules cached; dropping the caches would charge the reading
of our modules from disk to us alone. Also timed, outside the bars: ours with
``[import] max_parallel_stores = 3`` (the stores written at once). Prints each time, the
ratios ours/glance (bar <= 0.15) and ours/floor (bar <= 1.5), the same two for the service,
the step timings of our median run, our peak RSS, and checks that every run computed the same
``os_hash_value``.

Usage: .venv/bin/python benchmarks/bench_import.py [--rounds 3] [--virtual-mib 1024]
       [--data-mib 400] [--glance-dir DIR] [--glance-port PORT] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.hashing import digest_file  # noqa: E402
from tests.integration.conftest import fresh_postgres  # noqa: E402
from tests.support.api import running_api  # noqa: E402
from tests.support.images import MiB, make_sample_qcow2  # noqa: E402
from tests.support.workers import (  # noqa: E402
    Topology,
    delete_topology,
    running_workers,
)

STORES = ["central", "dcn0", "dcn1"]
PEER = ROOT.parent / "shared" / "bench" / "glance-peer"
IDENTITY = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench",
    "X-User-Id": "bench",
    "X-Roles": "admin,member,reader",
}


@dataclass
class Run:
    """One contender's run: seconds, the sha512 it computed, and notes."""

    seconds: float
    sha512: str
    notes: dict[str, object] = field(default_factory=dict)


def serve(directory: Path) -> int:
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

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return port_box[0]


def settle() -> None:
    """Start each run with nothing dirty left by the one before (see the module docstring).

    Each contender removes what it wrote right after it is timed; the pause lets the disk
    finish those deletions (this machine's filesystem discards freed blocks) before the next.
    """
    subprocess.run(["sync"], check=False)
    time.sleep(2)


# -- ours --------------------------------------------------------------------------------


def write_config(work: Path, database: str | None = None, topology: Topology | None = None) -> Path:
    """A configuration with three file stores and every other setting at its default.

    SQLite for the embedded import; the service gets its PostgreSQL ``database`` and, so that
    it shares no queue with anyone, its own broker names (``topology``).
    """
    config = work / "bench.toml"
    url = database or f"sqlite+aiosqlite:///{work}/bench.db"
    lines = [
        f'[database]\nurl = "{url}"',
        f'[staging]\ndir = "{work}/staging"',
        "[safety]\nallow_private_addresses = true\nallowed_ports = []\nstaging_min_free_bytes = 0",
        f'[stores]\ndefault = "{STORES[0]}"',
    ]
    lines += [f'[stores.{s}]\ntype = "file"\npath = "{work}/stores/{s}"' for s in STORES]
    if topology is not None:
        lines.append(
            f'[broker]\nqueue = "{topology.queue}"\nexchange = "{topology.exchange}"\n'
            f'dead_letter_exchange = "{topology.dead_exchange}"\n'
            f'dead_letter_queue = "{topology.dead_queue}"'
        )
        lines.append('[api]\nauth = "headers"')
    config.write_text("\n\n".join(lines) + "\n")
    return config


def run_ours(work: Path, url: str, parallel: int = 1) -> Run:
    """``imgworker import`` as a subprocess, with its peak RSS and step timings.

    The records (SQLite) persist from one run to the next, as for a user's second import and
    as for the peer (whose database exists); the stores and the staging area are emptied.
    """
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work)
    imgworker = Path(sys.executable).parent / "imgworker"
    argv = [str(imgworker), "--config", str(config), "import", "--uri", url]
    argv += ["--disk-format", "qcow2", "--stores", ",".join(STORES), "--json"]
    started = time.monotonic()
    env = dict(os.environ, IMGWORKER_IMPORT__MAX_PARALLEL_STORES=str(parallel))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    out, err = process.communicate()
    for scratch in ("stores", "staging"):
        shutil.rmtree(work / scratch, ignore_errors=True)
    if process.returncode != 0:
        raise SystemExit(f"imgworker import failed:\n{err.decode()}")
    shown = json.loads(out)
    steps = [line.split() for line in err.decode().splitlines() if line.rstrip().endswith(" s")]
    timings = {parts[0]: float(parts[-2]) for parts in steps if len(parts) >= 4}
    notes = {"peak_rss": peak, "steps": timings, "disk_format": shown["disk_format"]}
    return Run(elapsed, str(shown["os_hash_value"]), notes)


# -- Glance 33 ---------------------------------------------------------------------------


class GlancePeer:
    """A live Glance 33 of our own, started with the shared setup script and stopped after.

    It always starts its own uwsgi on a free port and checks that process is alive: on a
    shared machine another engineer's peer (or proxy) may answer on any fixed port, and the
    setup script's health check cannot tell.
    """

    def __init__(self, directory: Path, port: int | None) -> None:
        self.directory = directory.absolute()
        self.port = port or _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.pid: int | None = None

    def __enter__(self) -> GlancePeer:
        print(f"starting Glance 33 on port {self.port} (the first run installs it from PyPI)...")
        subprocess.run(
            [str(PEER / "setup.sh"), str(self.directory), str(self.port)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        pid = int((self.directory / "uwsgi.pid").read_text().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log = (self.directory / "log" / "uwsgi.log").read_text().splitlines()[-3:]
            raise SystemExit(f"Glance did not start on port {self.port}: {log}") from None
        self.pid = pid
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(self.api + path, method=method, headers=IDENTITY)
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def run(self, url: str) -> Run:
        """One import through the peer's own import.py; the image is deleted afterwards."""
        report = timed_by_import_py(self.api, url)
        if report["final"] != "active":
            raise SystemExit(f"the Glance import did not succeed: {report}")
        with contextlib.suppress(OSError):
            self._call("DELETE", f"/v2/images/{report['image_id']}")
        notes = {"timeline": report["timeline"], "size": report["size"]}
        return Run(float(report["elapsed_s"]), str(report["os_hash_value"]), notes)


def timed_by_import_py(api: str, url: str) -> dict[str, Any]:
    """The report of one import timed by the peer's import.py against the Image API at ``api``
    (Glance's, or ours): from the import call until the task ends, failure allowed."""
    done = subprocess.run(
        [sys.executable, str(PEER / "import.py"), api, url, ",".join(STORES), "allow"],
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- ours as a service -------------------------------------------------------------------


class ImgworkerService:
    """``imgworker api`` (identity from headers) and one ``imgworker run`` on a new PostgreSQL
    database and RabbitMQ, three file stores, stopped after; driven by the peer's import.py."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api = ""
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ImgworkerService:
        self.root.mkdir(parents=True, exist_ok=True)
        stack = self._stack
        database = stack.enter_context(fresh_postgres())
        topology = Topology()
        stack.callback(lambda: asyncio.run(delete_topology(topology)))
        config = write_config(self.root, database, topology)
        self.api = stack.enter_context(running_api(config, self.root)).url
        stack.enter_context(running_workers(config, self.root, 1))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, url: str) -> Run:
        """One import, timed by import.py exactly as Glance's; the data is removed after."""
        report = timed_by_import_py(self.api, url)
        for scratch in ("stores", "staging"):
            for entry in (self.root / scratch).glob("*/*"):
                entry.unlink()
        if report["final"] != "active":
            raise SystemExit(f"the imgworker service import did not succeed: {report}")
        return Run(float(report["elapsed_s"]), str(report["os_hash_value"]))


# -- the floor ---------------------------------------------------------------------------


def run_floor(work: Path, url: str) -> Run:
    """Download, convert into store 1, then the writes to stores 2-3 beside one hash pass."""
    shutil.rmtree(work, ignore_errors=True)
    stores = [work / name for name in STORES]
    for store in stores:
        store.mkdir(parents=True)
    staged, image = work / "staged.qcow2", [store / "image" for store in stores]
    started = time.monotonic()
    subprocess.run(["curl", "-sSf", "-o", str(staged), url], check=True)
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(staged), str(image[0])],
        check=True,
    )
    digests: dict[str, str] = {}

    def digest(algo: str) -> None:
        digests[algo] = digest_file(image[0], algo)

    hashers = [threading.Thread(target=digest, args=(algo,)) for algo in ("md5", "sha512")]
    for hasher in hashers:
        hasher.start()
    for target in image[1:]:
        subprocess.run(["cp", "--sparse=always", str(image[0]), str(target)], check=True)
    for target in image:
        fd = os.open(target, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    for hasher in hashers:
        hasher.join()
    elapsed = time.monotonic() - started
    shutil.rmtree(work, ignore_errors=True)
    return Run(elapsed, digests["sha512"])


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--virtual-mib", type=int, default=1024)
    parser.add_argument("--data-mib", type=int, default=400)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--glance-dir", type=Path, default=Path("/tmp/imgworker-glance-peer"))
    parser.add_argument("--glance-port", type=int, default=None, help="default: a free one")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="imgworker-bench-"))
    served = work / "served"
    served.mkdir(parents=True, exist_ok=True)
    image = served / "disk.qcow2"
    if not image.exists():
        print(f"generating a {args.virtual_mib} MiB-virtual qcow2 with {args.data_mib} MiB data...")
        make_sample_qcow2(image, args.virtual_mib * MiB, args.data_mib * MiB)
    print(f"image: {image} ({image.stat().st_size / 1e6:.0f} MB qcow2)")
    url = f"http://127.0.0.1:{serve(served)}/disk.qcow2"
    runs: dict[str, list[Run]] = {
        "ours": [],
        "glance": [],
        "floor": [],
        "parallel": [],
        "service": [],
    }
    imgworker = Path(sys.executable).parent / "imgworker"
    subprocess.run([str(imgworker), "--help"], check=True, stdout=subprocess.DEVNULL)
    try:
        with (
            GlancePeer(args.glance_dir, args.glance_port) as glance,
            ImgworkerService(work / "service") as service,
        ):
            for round_ in range(1, args.rounds + 1):
                for name, contender in (
                    ("ours", lambda: run_ours(work / "ours", url)),
                    ("glance", lambda: glance.run(url)),
                    ("floor", lambda: run_floor(work / "floor", url)),
                    ("parallel", lambda: run_ours(work / "ours", url, parallel=3)),
                    ("service", lambda: service.run(url)),
                ):
                    settle()
                    result = contender()
                    runs[name].append(result)
                    print(f"round {round_}: {name:<8} {result.seconds:6.1f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(runs)


def report(runs: dict[str, list[Run]]) -> None:
    """Print medians, ratios, where our time went, and check the hashes agree."""
    median = {name: statistics.median(r.seconds for r in found) for name, found in runs.items()}
    ours_median = min(runs["ours"], key=lambda r: abs(r.seconds - median["ours"]))
    hashes = {run.sha512 for found in runs.values() for run in found}
    prefixes = {value[:16] for value in hashes}
    assert len(prefixes) == 1, f"os_hash_value differs between contenders: {sorted(hashes)}"
    print()
    print(f"ours   (imgworker import, 3 stores):  {median['ours']:6.1f} s  (median)")
    print(f"glance (Glance 33, 3 stores):         {median['glance']:6.1f} s  (median)")
    print(f"floor  (download, convert, writes ∥ one hash pass): {median['floor']:6.1f} s")
    print(f"ours with max_parallel_stores = 3:    {median['parallel']:6.1f} s  (median)")
    print(f"ours as a service (api + one worker): {median['service']:6.1f} s  (median)")
    print(
        f"ours / glance = {median['ours'] / median['glance']:.3f} (bar <= 0.15)   "
        f"ours / floor = {median['ours'] / median['floor']:.2f} (bar <= 1.5)   "
        f"parallel: {median['parallel'] / median['glance']:.3f} / "
        f"{median['parallel'] / median['floor']:.2f}   "
        f"service: {median['service'] / median['glance']:.3f} / "
        f"{median['service'] / median['floor']:.2f}"
    )
    steps = ours_median.notes["steps"]
    assert isinstance(steps, dict)
    inside = sum(steps.values())
    print(
        "our median run: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items() if seconds >= 0.05)
        + f"; outside the steps {ours_median.seconds - inside:.1f} s"
    )
    peak = ours_median.notes["peak_rss"]
    assert isinstance(peak, int)
    print(f"our peak RSS {peak / MiB:.0f} MiB; os_hash_value {prefixes.pop()}... on all three")


if __name__ == "__main__":
    main()
