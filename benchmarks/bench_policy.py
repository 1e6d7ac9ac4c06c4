"""Benchmark: what the policy engine adds to image-show, against the hard-coded checks.

Both servers in the same run, alternated (A B A B A B; the median of each side's runs), on the same
SQLite catalogue and the same image, driven by the same client code:
  policy      ``imgworker api`` as shipped: every call asks oslo.policy (get_image, with
              Glance's target) through the engine and its remembered answers
  hard-coded  the same application with the engine replaced by the check imgworker made
              before it read policy files (a reader, member or admin role may see)
Each phase: image-show by C concurrent clients (a connection per request) for S seconds.
Printed: each side's p50 and requests/s, and the ratio policy/hard-coded of the p50
(the acceptance line: at most 1.05).

Usage: .venv/bin/python benchmarks/bench_policy.py [--clients 50] [--seconds 10]
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.workers import free_port

HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench",
    "X-User-Id": "bench",
    "X-Roles": "member,reader",
}


class HardCodedPolicy:
    """The check before policy files: any of Glance's three default roles may read."""

    def allows(self, rule: str, target: Mapping[str, Any], caller: Any) -> bool:
        return bool({"admin", "member", "reader"} & set(caller.roles))

    def refresh(self) -> bool:
        return False


def serve(config: str, port: int, kind: str) -> None:
    """Serve the API on ``port`` with the engine of ``kind`` until SIGTERM."""
    from aiohttp import web

    from worker.api.app import build_app, open_state
    from worker.config.settings import load_settings

    async def run() -> None:
        settings = load_settings(config)
        policy = HardCodedPolicy() if kind == "hard-coded" else None
        state = await open_state(settings, policy)  # type: ignore[arg-type]
        runner = web.AppRunner(build_app(state), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(run())


def _server(config: Path, kind: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(config), str(port), kind],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            subprocess.run(["curl", "-sf", f"{url}/versions"], check=True, capture_output=True)
            return process, url
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the {kind} server did not start") from None
            time.sleep(0.2)


async def _image(url: str) -> str:
    body = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v2/images", json=body, headers=HEADERS) as reply,
    ):
        assert reply.status == 201, await reply.text()
        return str((await reply.json())["id"])


async def _shows(url: str, image_id: str, clients: int, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients + 4, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(f"{url}/v2/images/{image_id}", headers=HEADERS) as r:
                    assert r.status == 200
                    await r.read()
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return statistics.median(latencies) * 1000, len(latencies) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "KIND"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as scratch:
        root = Path(scratch)
        config = root / "api.toml"
        config.write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{root / "db.sqlite"}"\n'
            f'[staging]\ndir = "{root / "staging"}"\n'
            f'[stores]\ndefault = "central"\n[stores.central]\ntype = "file"\n'
            f'path = "{root / "central"}"\n[api]\nauth = "headers"\n'
        )
        image_id = ""
        results: dict[str, list[tuple[float, float]]] = {"policy": [], "hard-coded": []}
        for kind in ("policy", "hard-coded") * args.pairs:
            process, url = _server(config, kind)
            try:
                image_id = image_id or asyncio.run(_image(url))
                results[kind].append(asyncio.run(_shows(url, image_id, args.clients, args.seconds)))
            finally:
                process.terminate()
                process.wait(20)
    p50 = {kind: statistics.median(r[0] for r in runs) for kind, runs in results.items()}
    rate = {kind: statistics.median(r[1] for r in runs) for kind, runs in results.items()}
    print(f"image-show, {args.clients} clients, {args.seconds:.0f} s x {args.pairs} per side")
    for kind in results:
        runs = ", ".join(f"{r[0]:.2f}" for r in results[kind])
        print(f"  {kind:10s} p50 {p50[kind]:7.2f} ms (runs: {runs})   {rate[kind]:7.1f} req/s")
    print(f"policy/hard-coded p50 ratio: {p50['policy'] / p50['hard-coded']:.3f} (limit 1.05)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
