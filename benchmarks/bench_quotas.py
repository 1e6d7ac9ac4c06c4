"""Benchmark: what Keystone's unified limits add to create + import, under concurrent clients.

Both sides in the same run, alternated (A B A B A B; the median of each side's runs), on the
same PostgreSQL, RabbitMQ and configuration, driven by the same client code:
  quotas on   ``imgworker api`` with ``[quotas] use_keystone_limits = true``: every create
              and every import counts the project's usage and is admitted under the
              project's lock (limits read from a real Keystone by oslo.limit, cached)
  quotas off  the same API with the setting off
Each phase, on a new database: C clients, each creating an image (``POST /v2/images``) and
importing it (``POST .../import``, web-download: admitted, recorded and published; no worker
runs it, so every image of the phase stays counted as uploading), until N images are done.
By default all clients are of one project: the worst case, where every admission waits for
the project's lock; ``--projects N`` spreads them over N projects. Printed: each side's p50
of create + import and images per second, and the ratio on/off of the p50 (the acceptance
line: at most 1.10).

Usage: .venv/bin/python benchmarks/bench_quotas.py [--clients 20] [--images 300] [--pairs 3]
       [--projects 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.conftest import fresh_postgres
from tests.support.api import running_api
from tests.support.keystone import ADMIN_PASSWORD, REGION, Keystone
from tests.support.workers import Topology, delete_topology, free_port, write_config

HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench",
    "X-User-Id": "bench",
    "X-Roles": "member,reader",
}
#: Limits no phase reaches: every request is checked, none refused.
REGISTERED = {
    "image_count_total": 1_000_000,
    "image_size_total": 1_000_000,
    "image_stage_total": 1_000_000,
    "image_count_uploading": 1_000_000,
}


def _limits(keystone: Keystone) -> None:
    """The image service, its endpoint and generous registered limits."""
    keystone.register_image_api("http://127.0.0.1:9/")
    service = keystone.admin("GET", "/services?type=image").body["services"][0]["id"]
    entries = [
        {"service_id": service, "region_id": REGION, "resource_name": r, "default_limit": v}
        for r, v in REGISTERED.items()
    ]
    keystone.admin("POST", "/registered_limits", {"registered_limits": entries})


async def _phase(
    url: str, clients: int, images: int, uri: str, projects: int = 1
) -> tuple[float, float]:
    latencies: list[float] = []
    left = images
    body = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
    request = {"method": {"name": "web-download", "uri": uri}}
    connector = aiohttp.TCPConnector(limit=clients + 4, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(number: int) -> None:
            nonlocal left
            headers = {**HEADERS, "X-Project-Id": f"bench-{number % projects}"}
            while left > 0:
                left -= 1
                started = time.perf_counter()
                async with session.post(f"{url}/v2/images", json=body, headers=headers) as made:
                    assert made.status == 201, await made.text()
                    image_id = (await made.json())["id"]
                imported = f"{url}/v2/images/{image_id}/import"
                async with session.post(imported, json=request, headers=headers) as r:
                    assert r.status == 202, await r.text()
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client(number) for number in range(clients)))
        return statistics.median(latencies) * 1000, images / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--images", type=int, default=300, help="images per phase")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--projects", type=int, default=1, help="clients spread over them")
    args = parser.parse_args()
    topology = Topology()
    results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="bench-quotas-") as scratch:
        root = Path(scratch)
        keystone = Keystone(root / "keystone", free_port())
        keystone.start()
        try:
            _limits(keystone)
            quotas = {
                "IMGWORKER_KEYSTONE__AUTH_URL": keystone.url,
                "IMGWORKER_KEYSTONE__USERNAME": "admin",
                "IMGWORKER_KEYSTONE__PASSWORD": ADMIN_PASSWORD,
                "IMGWORKER_QUOTAS__USE_KEYSTONE_LIMITS": "true",
            }
            uri = "http://127.0.0.1:9/disk.raw"  # vetted, never fetched: no worker runs
            for side in ("on", "off") * args.pairs:
                # A new database per phase: both sides count the same records.
                with fresh_postgres() as database:
                    config = write_config(root, database, topology, stores=("central",))
                    with config.open("a") as extra:
                        extra.write('\n[api]\nauth = "headers"\n')
                    environment = quotas if side == "on" else {}
                    with running_api(config, root, f"api-{side}", **environment) as api:
                        asyncio.run(_phase(api.url, 4, 8, uri))  # warm: connections, caches
                        results[side].append(
                            asyncio.run(
                                _phase(api.url, args.clients, args.images, uri, args.projects)
                            )
                        )
        finally:
            keystone.stop()
            asyncio.run(delete_topology(topology))
    p50 = {side: statistics.median(r[0] for r in runs) for side, runs in results.items()}
    rate = {side: statistics.median(r[1] for r in runs) for side, runs in results.items()}
    print(
        f"create + import, {args.clients} clients of {args.projects} project(s), "
        f"{args.images} images x {args.pairs} per side"
    )
    for side, runs in results.items():
        each = ", ".join(f"{r[0]:.1f}" for r in runs)
        print(
            f"  quotas {side:3s} p50 {p50[side]:7.1f} ms (runs: {each})   "
            f"{rate[side]:6.1f} images/s"
        )
    print(f"quotas on/off p50 ratio: {p50['on'] / p50['off']:.3f} (limit 1.10)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
