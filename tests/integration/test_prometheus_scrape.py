"""A real Prometheus scraping two real workers: counters arrive and the rules evaluate."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest

from flows.request import ImportRequest
from tests.support.enqueue import enqueue
from tests.support.http import serve_directory
from tests.support.images import MiB, make_sparse_raw
from tests.support.services import require_program, require_tcp
from tests.support.workers import (
    Topology,
    Worker,
    delete_topology,
    free_port,
    running_workers,
    write_config,
)
from worker.config.settings import load_settings
from worker.db.catalog import NewImage
from worker.tasks.services import Services

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "imgworker-rules.yml"


@pytest.fixture
def prometheus_binary() -> str:
    return require_program("prometheus", "prometheus")


def _start_prometheus(
    binary: str, root: Path, workers: list[Worker]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = root / "prometheus.yml"
    targets = ", ".join(f'"127.0.0.1:{worker.port}"' for worker in workers)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: imgworker\n"
        f"    static_configs:\n      - targets: [{targets}]\n"
    )
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _query(base: str, expr: str) -> list[dict[str, object]]:
    with urlopen(f"{base}/api/v1/query?query={quote(expr)}", timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success"
    return list(body["data"]["result"])


def _value(base: str, expr: str) -> float | None:
    try:
        result = _query(base, expr)
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def _wait_for(base: str, expr: str, expected: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = _value(base, expr)
        if last == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} = {last}, expected {expected}")


@pytest.fixture
def scraped(
    tmp_path: Path, postgres_url: str, prometheus_binary: str
) -> Iterator[tuple[Path, list[Worker], str]]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    topology = Topology()
    config = write_config(tmp_path, postgres_url, topology)
    try:
        with running_workers(config, tmp_path, 2) as workers:
            process, base = _start_prometheus(prometheus_binary, tmp_path, workers)
            try:
                yield config, workers, base
            finally:
                process.terminate()
                process.wait(20)
    finally:
        asyncio.run(delete_topology(topology))


async def test_prometheus_sees_the_counters_and_evaluates_the_rules(
    tmp_path: Path, scraped: tuple[Path, list[Worker], str]
) -> None:
    config, _workers, base = scraped
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(www / "disk.raw", 2 * MiB, [(0, MiB)])
    services = await Services.open(load_settings(str(config), environ={}))
    try:
        async with serve_directory(www) as source:
            for _ in range(4):
                image = await services.records.catalog.create(
                    NewImage(owner=None, name="scraped", disk_format="raw", container_format="bare")
                )
                request = ImportRequest(method="web-download", uri=f"{source}/disk.raw")
                await enqueue(services, image.id, request)
            await asyncio.to_thread(_wait_for, base, "sum(imgworker_tasks_succeeded_total)", 4.0)
    finally:
        await services.close()
    await asyncio.to_thread(_wait_for, base, 'sum(up{job="imgworker"})', 2.0)
    await asyncio.to_thread(_wait_for, base, "imgworker:consumers_attached", 2.0)
    assert _value(base, "sum(imgworker_bytes_written_total)") == 4 * MiB
    with urlopen(f"{base}/api/v1/rules", timeout=5) as response:
        groups = json.loads(response.read())["data"]["groups"]
    assert {group["name"] for group in groups} == {"imgworker-recording", "imgworker-alerts"}
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])
