"""API nodes with an image cache (``[cache]``), and what the cache tests look at."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

from flows.records import ImageRecord
from tests.support.api import ApiProcess, start_api
from tests.support.workers import Topology, free_port, write_config
from worker.config.settings import load_settings
from worker.tasks.embedded import import_image
from worker.tasks.services import Services

MiB = 1024 * 1024


def cache_config(
    root: Path,
    database_url: str,
    topology: Topology,
    *,
    max_size: int = 256 * MiB,
    retry_seconds: float = 1.0,
    stores: tuple[str, ...] = ("central",),
) -> Path:
    """The configuration every node of a test shares; each gets its own dir and name."""
    config = write_config(root, database_url, topology, stores=stores)
    with config.open("a") as extra:
        extra.write(f"\n[cache]\nmax_size = {max_size}\nprefetch_retry_seconds = {retry_seconds}\n")
    return config


@dataclass
class Node:
    """One ``imgworker api`` with its cache."""

    name: str
    directory: Path
    api: ApiProcess
    metrics_port: int

    @property
    def url(self) -> str:
        """Its base URL (what ``GET /v2/cache/nodes`` lists for it)."""
        return self.api.url

    def entries(self) -> list[str]:
        """The image ids of the entries on its disk."""
        images = self.directory / "images"
        return sorted(p.name for p in images.iterdir()) if images.exists() else []

    def partials(self) -> list[str]:
        """The partial fills on its disk."""
        incomplete = self.directory / "incomplete"
        return sorted(p.name for p in incomplete.iterdir()) if incomplete.exists() else []

    def queued(self) -> list[str]:
        """The images queued on it, as ``GET /v2/cache`` lists them."""
        with urlopen(f"{self.url}/v2/cache", timeout=10) as reply:
            return sorted(json.load(reply)["queued_images"])

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of its ``/metrics`` (0 when absent)."""
        with urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0


def start_node(config: Path, root: Path, name: str, **environment: str) -> Node:
    """Start a node named ``name`` with its cache in ``root/cache-<name>``."""
    directory = root / f"cache-{name}"
    port = free_port()
    api = start_api(
        config,
        root,
        name,
        IMGWORKER_CACHE__DIR=f'"{directory}"',
        IMGWORKER_CACHE__NODE=f'"{name}"',
        IMGWORKER_API__METRICS_LISTEN=f'"127.0.0.1:{port}"',
        **environment,
    )
    return Node(name, directory, api, port)


def stop_node(node: Node, signum: int = 15) -> None:
    """Stop a node (SIGTERM, or another signal) and wait for it."""
    if node.api.process.poll() is None:
        node.api.process.send_signal(signum)
        node.api.process.wait(30)


@contextmanager
def running_nodes(config: Path, root: Path, *names: str) -> Iterator[list[Node]]:
    """Nodes for the duration; stopped at the end whatever state they are in."""
    nodes: list[Node] = []
    try:
        for name in names:
            nodes.append(start_node(config, root, name))
        yield nodes
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                stop_node(node)
            if node.api.process.poll() is None:
                node.api.process.kill()


async def active_image(config: Path, source: Path, store: str = "central") -> ImageRecord:
    """Import ``source`` (raw) into ``store`` in this process; the active image."""
    services = await Services.open(load_settings(config))
    try:
        result = await import_image(
            services, file=source, disk_format="raw", stores=[store], allow_failure=True
        )
    finally:
        await services.close()
    assert result.image.status == "active", result.outcome
    return result.image


async def delete_cache_topology(
    topology: Topology, nodes: list[str], url: str = "amqp://guest:guest@127.0.0.1:5672/"
) -> None:
    """Remove the cache's exchange and the nodes' queues a test made."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in nodes:
            await channel.queue_delete(f"{topology.exchange}.cache.{name}")
        await channel.exchange_delete(f"{topology.exchange}.cache")


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """``check()``'s first truthy value, polled until ``timeout`` (then an assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what or check}"
        time.sleep(0.2)
