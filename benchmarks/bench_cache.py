"""Benchmark: an API node's image cache against Glance 33's, behind a rate-limited edge link.

One throwaway Ceph cluster is an edge site (``CEPH_SITE_RATE=400mbit``: its own network
namespace behind a tbf-shaped veth pair); each side reads its own copy of the same image
(1 GiB of random data, so every byte crosses the link) from it:

  ours    ``imgworker api`` with ``[cache]`` (PostgreSQL, RabbitMQ), the image in an rbd store
  glance  Glance 33.0.0 from PyPI with its cache (``shared/bench/glance-peer/setup.sh``,
          ``PEER_CACHE=1``, ``PEER_DB=mariadb``), an rbd store added to its configuration
          (glance_store's rbd driver, the same cluster and link)

Measured in one run, every download a ``curl`` process writing to /dev/null:

1. one cold download (the cache empty), then one warm: the ratio cold/warm (bar >= 10);
2. the on-read check: warm downloads with ``[cache] verify_reads`` on, off, on again (the
   same entry, the node restarted between), medians: the ratio checked/unchecked;
3. N (20) concurrent cold downloads on one node, ours then Glance's: the time until the last
   one ended, and the bytes that came over the site's link meanwhile (its veth counter; ours
   also by ``imgworker_cache_store_read_bytes_total``): the ratio ours/glance (bar <= 0.2).

Usage: .venv/bin/python benchmarks/bench_cache.py [--gib 1] [--clients 20] [--rounds 5]
       [--rate 400mbit] [--peer-processes 1] [--glance-venv DIR]
Needs root (network namespaces), MariaDB on its socket, PostgreSQL and RabbitMQ.
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
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, start_api
from tests.support.ceph import Site
from tests.support.images import MiB
from tests.support.workers import Topology, delete_topology, free_port
from worker.config.settings import load_settings
from worker.tasks.embedded import import_image
from worker.tasks.services import Services

GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parent.parent
UP, DOWN = ROOT / "deploy/dev/ceph-up.sh", ROOT / "deploy/dev/ceph-down.sh"
#: The peer's setup script, beside the checkout (or beside the worktrees' directory).
PEER = next(
    (
        place / "shared" / "bench" / "glance-peer" / "setup.sh"
        for place in (ROOT.parent, ROOT.parent.parent)
        if (place / "shared" / "bench" / "glance-peer" / "setup.sh").exists()
    ),
    ROOT.parent / "shared" / "bench" / "glance-peer" / "setup.sh",
)
IDENTITY = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench",
    "X-User-Id": "bench",
    "X-Roles": "admin,member,reader",
}


# -- the downloads ------------------------------------------------------------------------


def curl(url: str, headers: dict[str, str]) -> subprocess.Popen[str]:
    """One download to /dev/null, in its own process; prints status and size."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def downloads(
    url: str, count: int, size: int, headers: dict[str, str]
) -> tuple[float, list[float]]:
    """``count`` downloads at once: seconds until the last ended, and each one's seconds."""
    started = time.perf_counter()
    running = [curl(url, headers) for _ in range(count)]
    each = []
    for process in running:
        out, _ = process.communicate(timeout=3600)
        each.append(time.perf_counter() - started)
        assert out == f"200 {size}", f"a download failed: {out}"
    return time.perf_counter() - started, each


def one(url: str, size: int, headers: dict[str, str] | None = None) -> float:
    """Seconds for one download."""
    return downloads(url, 1, size, headers or {})[0]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served(api: ApiProcess, url: str, size: int, rounds: int) -> list[tuple[float, float]]:
    """``rounds`` warm downloads: each one's seconds, and the CPU seconds the node spent."""
    measured = []
    for _ in range(rounds):
        before = cpu_seconds(api.process.pid)
        seconds = one(url, size)
        measured.append((seconds, cpu_seconds(api.process.pid) - before))
    return measured


# -- ours ---------------------------------------------------------------------------------


def our_config(work: Path, database: str, topology: Topology, conf: str) -> Path:
    """The API node's configuration: an rbd store on the site, a cache of 4 GiB."""
    config = work / "ours.toml"
    config.write_text(
        f'[database]\nurl = "{database}"\n\n'
        f'[broker]\nqueue = "{topology.queue}"\nexchange = "{topology.exchange}"\n'
        f'dead_letter_exchange = "{topology.dead_exchange}"\n'
        f'dead_letter_queue = "{topology.dead_queue}"\n\n'
        f'[staging]\ndir = "{work / "staging"}"\n\n'
        f'[stores]\ndefault = "site"\n\n[stores.site]\ntype = "rbd"\nconf = "{conf}"\n\n'
        f"[cache]\nmax_size = {4 * GiB}\n\n"
        "[safety]\nstaging_min_free_bytes = 0\n"
    )
    return config


async def import_ours(config: Path, source: Path) -> str:
    """The image, imported into the rbd store in this process; its id."""
    services = await Services.open(load_settings(config))
    try:
        result = await import_image(services, file=source, disk_format="raw", stores=["site"])
    finally:
        await services.close()
    assert result.image.status == "active", result.outcome
    return result.image.id


@contextmanager
def our_node(config: Path, work: Path, **settings: str) -> Iterator[tuple[ApiProcess, int]]:
    """The node (its cache in work/cache, always the same name), and its metrics port."""
    port = free_port()
    api = start_api(
        config,
        work,
        "ours",
        IMGWORKER_CACHE__DIR=f'"{work / "cache"}"',
        IMGWORKER_CACHE__NODE='"bench"',
        IMGWORKER_API__METRICS_LISTEN=f'"127.0.0.1:{port}"',
        **settings,
    )
    try:
        yield api, port
    finally:
        api.process.terminate()
        api.process.wait(60)


def metric(port: int, name: str) -> float:
    """One unlabelled sample of the node's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise KeyError(name)


def clear_cache(api: ApiProcess) -> None:
    """Empty the node's cache (``DELETE /v2/cache``) and wait until it is."""
    request = urllib.request.Request(f"{api.url}/v2/cache", method="DELETE")
    urllib.request.urlopen(request, timeout=60).close()
    while True:
        with urllib.request.urlopen(f"{api.url}/v2/cache", timeout=60) as reply:
            if not json.load(reply)["cached_images"]:
                return
        time.sleep(0.2)


# -- glance -------------------------------------------------------------------------------


@contextmanager
def glance_peer(work: Path, conf: str, venv: Path, processes: int) -> Iterator[str]:
    """Glance 33 with its cache and an rbd store ``ceph`` on the site; its URL."""
    directory, port = work / "glance", free_port()
    directory.mkdir()
    if (venv / "bin" / "uwsgi").exists():
        (directory / "venv").symlink_to(venv)  # setup.sh installs only into a missing venv
    env = dict(os.environ, PEER_CACHE="1", PEER_DB="mariadb", PEER_PROCESSES=str(processes))
    try:
        url = subprocess.run(
            ["bash", str(PEER), str(directory), str(port)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        ).stdout.split()[-1]
        _add_rbd_store(directory, conf, url)
        yield url
    finally:
        subprocess.run(
            ["bash", str(PEER), str(directory), str(port)],
            env=dict(env, PEER_DROP="1"),
            check=False,
            timeout=300,
        )


def _add_rbd_store(directory: Path, conf: str, url: str) -> None:
    """Give the running peer an rbd store: the bindings, the configuration, a restart."""
    python = str(directory / "venv" / "bin" / "python")
    site, suffix = subprocess.run(
        [python, "-c", "import sysconfig as s; print(s.get_paths()['platlib'], "
         "s.get_config_var('EXT_SUFFIX'))"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    for module in ("rados", "rbd"):
        target = Path(site) / f"{module}{suffix}"
        if not target.exists():
            target.symlink_to(Path("/usr/lib/python3/dist-packages") / f"{module}{suffix}")
    pid = int((directory / "uwsgi.pid").read_text())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, 15)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    config = directory / "glance-api.conf"
    text = config.read_text().replace(
        "enabled_backends = central:file,", "enabled_backends = ceph:rbd, central:file,"
    )
    text += (
        f"[ceph]\nrbd_store_ceph_conf = {conf}\nrbd_store_pool = images\n"
        "rbd_store_user = admin\nrbd_store_chunk_size = 8\n"
    )
    config.write_text(text)
    subprocess.run(
        [arg.decode() for arg in argv],
        env=dict(os.environ, OS_GLANCE_CONFIG_DIR=str(directory)),
        check=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            stores = _glance_json(url, "GET", "/v2/info/stores")
            if any(store["id"] == "ceph" for store in stores["stores"]):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the peer did not come back with its rbd store; see {directory}/log")


def _glance_json(url: str, method: str, path: str, body: object = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {**IDENTITY, "Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as reply:
        answer = reply.read()
    return dict(json.loads(answer)) if answer else {}


def upload_glance(url: str, source: Path) -> str:
    """The image, uploaded into the peer's rbd store (``X-Image-Meta-Store: ceph``)."""
    image = _glance_json(
        url,
        "POST",
        "/v2/images",
        {"name": "bench", "disk_format": "raw", "container_format": "bare"},
    )
    image_id = str(image["id"])
    argv = ["curl", "-sf", "-X", "PUT", "-T", str(source), f"{url}/v2/images/{image_id}/file"]
    headers = {**IDENTITY, "Content-Type": "application/octet-stream", "X-Image-Meta-Store": "ceph"}
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    subprocess.run(argv, check=True, timeout=3600)
    shown = _glance_json(url, "GET", f"/v2/images/{image_id}")
    assert shown["status"] == "active" and shown["stores"] == "ceph", shown
    return image_id


# -- the run ------------------------------------------------------------------------------


def random_image(path: Path, size: int) -> None:
    """``size`` bytes of random data (nothing a link or a store could compress or skip)."""
    with path.open("wb") as out:
        for _ in range(size // (64 * MiB)):
            out.write(os.urandom(64 * MiB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", default="400mbit")
    parser.add_argument("--peer-processes", type=int, default=1)
    parser.add_argument(
        "--glance-venv",
        type=Path,
        default=Path("/tmp/imgworker-cache-bench/glance-venv"),
        help="an installed Glance 33 venv to reuse (setup.sh installs one when missing)",
    )
    args = parser.parse_args()
    size = int(args.gib * GiB) // (64 * MiB) * 64 * MiB
    work = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=ROOT))
    topology = Topology()
    try:
        run(args, work, size, topology)
    finally:
        subprocess.run([str(DOWN), str(work / "ceph")], check=False, timeout=300)
        asyncio.run(delete_topology(topology))
        subprocess.run(["rm", "-rf", str(work)], check=False)


def run(args: argparse.Namespace, work: Path, size: int, topology: Topology) -> None:
    """Everything of :func:`main` once the work directory exists."""
    source = work / "image.raw"
    random_image(source, size)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_SITE_RATE")}
    env.update(CEPH_SITE_RATE=args.rate, CEPH_MEMSTORE_BYTES=str(2 * size + 2 * GiB))
    conf = subprocess.run(
        [str(UP), "1", str(work / "ceph")], env=env, check=True, capture_output=True, text=True
    ).stdout.split()[0]
    site = Site.load(Path(conf).parent)
    assert site is not None
    print(f"{size / GiB:.2f} GiB of random data; one Ceph site behind {args.rate} "
          f"({site.rate * 8 / 1e6:.0f} Mbit/s as tbf enforces it)")  # fmt: skip
    figures: dict[str, float] = {}
    with fresh_postgres() as database:
        config = our_config(work, database, topology, conf)
        image_id = asyncio.run(import_ours(config, source))
        path = f"/v2/images/{image_id}/file"
        with our_node(config, work) as (api, port):
            figures["cold"] = one(api.url + path, size)
            figures["warm"] = one(api.url + path, size)
            print(f"ours: cold {figures['cold']:.2f} s, warm {figures['warm']:.2f} s", flush=True)
            checked = served(api, api.url + path, size, args.rounds)
        with our_node(config, work, IMGWORKER_CACHE__VERIFY_READS="false") as (api, port):
            unchecked = served(api, api.url + path, size, args.rounds)
        with our_node(config, work) as (api, port):
            checked += served(api, api.url + path, size, args.rounds)
            print(f"ours: warm checked {checked}, unchecked {unchecked}", flush=True)
            clear_cache(api)
            link, read = site.sample(), metric(port, "imgworker_cache_store_read_bytes_total")
            figures["ours_n"], ours_each = downloads(api.url + path, args.clients, size, {})
            figures["ours_link"] = site.sample().received - link.received
            figures["ours_read"] = metric(port, "imgworker_cache_store_read_bytes_total") - read
            print(f"ours: {args.clients} cold at once {figures['ours_n']:.1f} s", flush=True)
        for label, measured in (("checked", checked), ("unchecked", unchecked)):
            figures[label] = statistics.median(seconds for seconds, _ in measured)
            figures[f"{label}_cpu"] = statistics.median(cpu for _, cpu in measured)
    with glance_peer(work, conf, args.glance_venv, args.peer_processes) as url:
        glance_id = upload_glance(url, source)
        link = site.sample()
        figures["glance_n"], glance_each = downloads(
            f"{url}/v2/images/{glance_id}/file", args.clients, size, IDENTITY
        )
        figures["glance_link"] = site.sample().received - link.received
        print(f"glance: {args.clients} cold at once {figures['glance_n']:.1f} s", flush=True)
        figures["glance_warm"] = one(f"{url}/v2/images/{glance_id}/file", size, IDENTITY)
    report(args, size, figures, ours_each, glance_each)


def report(
    args: argparse.Namespace,
    size: int,
    f: dict[str, float],
    ours_each: list[float],
    glance_each: list[float],
) -> None:
    """Print the figures and the ratios."""
    rate = size / MiB
    print(f"cold download (cache empty):  {f['cold']:7.2f} s  ({rate / f['cold']:6.1f} MiB/s)")
    print(f"warm download (cached):       {f['warm']:7.2f} s  ({rate / f['warm']:6.1f} MiB/s)")
    print(f"  cold / warm = {f['cold'] / f['warm']:.1f}x  (bar >= 10)")
    print(
        f"warm, every block checked:    {f['checked']:7.3f} s, the node's CPU "
        f"{f['checked_cpu']:.3f} s  (medians of {2 * args.rounds})\n"
        f"warm, verify_reads = false:   {f['unchecked']:7.3f} s, the node's CPU "
        f"{f['unchecked_cpu']:.3f} s  (medians of {args.rounds})\n"
        f"  the on-read check: checked / unchecked = {f['checked'] / f['unchecked']:.3f} in "
        f"time, {f['checked_cpu'] / f['unchecked_cpu']:.3f} in the node's CPU"
    )
    for side, each in (("ours", ours_each), ("glance", glance_each)):
        n = f[f"{side}_n"]
        print(
            f"{args.clients} concurrent cold downloads, {side:6s}: {n:7.1f} s until the last "
            f"(first {min(each):.1f} s, median {statistics.median(each):.1f} s); "
            f"{f[f'{side}_link'] / GiB:.2f} GiB came over the link"
        )
    print(f"  bytes ours read from the store: {int(f['ours_read'])} (the image: {size})")
    print(f"  ours / glance = {f['ours_n'] / f['glance_n']:.3f}  (bar <= 0.2)")
    print(
        f"one warm download from Glance's cache: {f['glance_warm']:.2f} s; ours "
        f"{f['warm']:.2f} s (ours / glance = {f['warm'] / f['glance_warm']:.3f})"
    )


if __name__ == "__main__":
    main()
