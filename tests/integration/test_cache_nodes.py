"""The image cache on two API nodes sharing PostgreSQL and RabbitMQ, driven by the real
``glance`` and ``openstack`` clients and by ``imgworker cache``.

A request sent to one node reaches both: queue through one, both fetch; delete through one,
both drop; an image deleted through one leaves both caches; a node that was down catches up
when it returns, under its stable name. Listings answer for the node asked, as Glance's do.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from tests.integration.conftest import fresh_postgres
from tests.support.cache import (
    Node,
    active_image,
    cache_config,
    delete_cache_topology,
    eventually,
    running_nodes,
    start_node,
    stop_node,
)
from tests.support.clients import Clients, table, unauthenticated
from tests.support.images import MiB, make_sparse_raw
from tests.support.services import require_tcp
from tests.support.workers import IMGWORKER, Topology, delete_topology


@dataclass
class Pair:
    """Two nodes, three active images (6 MiB: two cache blocks each) and their sources."""

    root: Path
    config: Path
    a: Node
    b: Node
    images: list[str]
    sources: dict[str, Path]

    def clients(self, node: Node) -> Clients:
        """glance and openstack pointed straight at ``node`` (as the cache API requires)."""
        return unauthenticated(node.url, self.root / "home")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``imgworker cache ARGS`` with the shared configuration."""
        env = dict(os.environ, IMGWORKER_CONFIG=str(self.config))
        return subprocess.run(
            [IMGWORKER, "cache", *args], env=env, capture_output=True, text=True, timeout=120
        )

    def both_hold(self, *image_ids: str) -> bool:
        """Whether both nodes' disks hold exactly ``image_ids``."""
        return self.a.entries() == self.b.entries() == sorted(image_ids)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("cache-nodes")
    topology = Topology()
    with fresh_postgres() as database:
        config = cache_config(root, database, topology)
        sources = {}
        for n in range(3):
            source = root / f"disk{n}.raw"
            make_sparse_raw(source, 6 * MiB, [(0, 2 * MiB), (4 * MiB, MiB)], seed=n + 1)
            image = asyncio.run(active_image(config, source))
            sources[image.id] = source
        try:
            with running_nodes(config, root, "a", "b") as (a, b):
                pair = Pair(root, config, a, b, list(sources), sources)
                try:
                    yield pair
                finally:
                    stop_node(pair.b)  # a node a test restarted is not the one started here
        finally:
            asyncio.run(delete_cache_topology(topology, ["a", "b"]))
            asyncio.run(delete_topology(topology))


@pytest.fixture(autouse=True)
def empty_caches(pair: Pair) -> Iterator[None]:
    """Each test starts and ends with both caches and queues empty."""
    yield
    urlopen(Request(f"{pair.a.url}/v2/cache", method="DELETE"), timeout=30).close()
    eventually(lambda: pair.both_hold(), what="both caches emptied")


def _cache_list(clients: Clients) -> dict[str, dict[str, str]]:
    return {row["ID"]: row for row in table(clients.glance("cache-list").ok().stdout)}


def test_versions_list_the_cache_api(pair: Pair) -> None:
    with urlopen(f"{pair.a.url}/versions", timeout=10) as reply:
        versions = json.load(reply)["versions"]
    assert versions[0] == {**versions[0], "id": "v2.18", "status": "CURRENT"}
    assert {"v2.14", "v2.15", "v2.17"} <= {v["id"] for v in versions}


def test_glance_cache_commands_reach_both_nodes(pair: Pair, tmp_path: Path) -> None:
    one, two, three = pair.images
    on_a, on_b = pair.clients(pair.a), pair.clients(pair.b)

    read_before = pair.b.metric("imgworker_cache_store_read_bytes_total")
    on_a.glance("cache-queue", one).ok()
    eventually(lambda: pair.both_hold(one), what="queued through a, fetched by both")
    listed = _cache_list(on_b)
    assert listed[one]["State"] == "cached" and listed[one]["Size"] == str(6 * MiB)
    nodes = table(on_a.glance("cache-nodes-list", one).ok().stdout)
    assert sorted(row["Node Reference URL"] for row in nodes) == sorted([pair.a.url, pair.b.url])

    target = tmp_path / "one.raw"
    on_b.glance("image-download", one, "--file", str(target)).ok()
    assert target.read_bytes() == pair.sources[one].read_bytes()
    assert _cache_list(on_b)[one]["Hits"] == "1"
    assert pair.b.metric("imgworker_cache_hits_total") >= 1
    # The store was read once, data only (holes are not read), and not for the download.
    read = pair.b.metric("imgworker_cache_store_read_bytes_total") - read_before
    assert read == 3 * MiB

    on_b.glance("cache-delete", one).ok()
    eventually(lambda: pair.both_hold(), what="deleted through b, dropped by both")

    on_a.glance("cache-queue", two, three).ok()
    eventually(lambda: pair.both_hold(two, three), what="two images queued through a")
    on_b.glance("cache-clear", "--target", "cache").ok()
    eventually(lambda: pair.both_hold(), what="cache cleared through b")
    assert "Pruned 0 file(s), 0 byte(s)." in on_a.glance("cache-prune").ok().stdout
    on_a.glance("cache-clean").ok()
    on_a.glance("cache-queue", one).ok()
    eventually(lambda: pair.both_hold(one), what="queued again")
    on_b.glance("cache-clear").ok()  # cache and queue
    eventually(lambda: pair.both_hold(), what="cleared through b, both targets")


def test_openstack_cached_image_commands_reach_both_nodes(pair: Pair) -> None:
    one, two, _three = pair.images
    on_a, on_b = pair.clients(pair.a), pair.clients(pair.b)

    on_b.openstack("cached", "image", "queue", one, two).ok()
    eventually(lambda: pair.both_hold(one, two), what="queued through b with openstack")
    listed = {
        row["ID"]: row for row in table(on_a.openstack("cached", "image", "list").ok().stdout)
    }
    assert {listed[one]["State"], listed[two]["State"]} == {"cached"}

    on_a.openstack("cached", "image", "delete", one).ok()
    eventually(lambda: pair.both_hold(two), what="deleted through a with openstack")
    on_a.openstack("cached", "image", "clear", "--cache").ok()
    eventually(lambda: pair.both_hold(), what="cleared through a with openstack")
    on_b.openstack("cached", "image", "clear").ok()  # cache and queue


def test_an_image_deleted_through_one_node_leaves_both_caches(pair: Pair) -> None:
    doomed_source = pair.root / "doomed.raw"
    make_sparse_raw(doomed_source, 5 * MiB, [(0, MiB)], seed=9)
    doomed = asyncio.run(active_image(pair.config, doomed_source)).id
    on_a = pair.clients(pair.a)
    on_a.glance("cache-queue", doomed).ok()
    eventually(lambda: pair.both_hold(doomed), what="the image cached by both")
    on_a.glance("image-delete", doomed).ok()
    eventually(lambda: pair.both_hold(), what="the deleted image dropped by both")
    assert pair.a.metric("imgworker_cache_evictions_total", reason="image_gone") >= 1


def test_a_node_that_was_down_catches_up_under_its_name(pair: Pair) -> None:
    one, two, _three = pair.images
    on_a = pair.clients(pair.a)
    on_a.glance("cache-queue", one).ok()
    eventually(lambda: pair.both_hold(one), what="both cached the first image")
    stop_node(pair.b)
    try:
        on_a.glance("cache-queue", two).ok()
        eventually(
            lambda: pair.a.entries() == sorted([one, two]), what="a fetched while b was down"
        )
        assert pair.b.entries() == [one]
    finally:
        pair.b = start_node(pair.config, pair.root, "b")
    eventually(lambda: pair.both_hold(one, two), what="b caught up when it returned")
    assert set(_cache_list(pair.clients(pair.b))) == {one, two}


def test_imgworker_cache_commands(pair: Pair) -> None:
    one, two, three = pair.images
    queued = pair.cli("queue-image", one, "--node", "a", "-f", "-v")
    assert queued.returncode == 0, queued.stderr
    assert f"Queued image {one} for caching" in queued.stdout
    eventually(lambda: pair.a.entries() == [one], what="queued on a only")
    assert pair.b.entries() == []

    nodes = pair.cli("list-nodes").stdout
    assert pair.a.url in nodes and pair.b.url in nodes
    every = pair.cli("list-cached").stdout
    assert every.startswith("Found 1 cached images...") and "| a    |" in every
    unknown = pair.cli("list-cached", "--node", "nowhere")
    assert unknown.returncode != 0 and "no cache node named 'nowhere'" in unknown.stderr
    refused = pair.cli("queue-image", "not-a-uuid", "-f")
    assert refused.returncode != 0 and "is not a valid UUID" in refused.stderr

    # A store that cannot be read: the image stays queued, retried, listed on both nodes.
    store_file = pair.root / "stores" / "central" / two
    hidden = store_file.with_name("hidden")
    shutil.move(store_file, hidden)
    try:
        assert pair.cli("queue-image", two, "-f").returncode == 0
        eventually(lambda: pair.a.queued() == pair.b.queued() == [two], what="queued on both")
        listed = pair.cli("list-queued").stdout
        assert listed.startswith("Found 2 queued images...") and f"| b    | {two} |" in listed
        assert pair.cli("delete-queued-image", two, "--node", "b", "-f").returncode == 0
        eventually(lambda: pair.b.queued() == [] and pair.a.queued() == [two], what="b dequeued")
        assert pair.cli("delete-all-queued-images", "-f", "-v").returncode == 0
        eventually(lambda: pair.a.queued() == [], what="a dequeued")
    finally:
        shutil.move(hidden, store_file)

    assert pair.cli("queue-image", three, "-f").returncode == 0
    eventually(
        lambda: pair.a.entries() == sorted([one, three]) and pair.b.entries() == [three],
        what="the third image on both",
    )
    assert pair.cli("delete-cached-image", one, "--node", "a", "-f").returncode == 0
    eventually(lambda: pair.both_hold(three), what="the first dropped from a")
    assert pair.cli("delete-all-cached-images", "-f").returncode == 0
    eventually(lambda: pair.both_hold(), what="every cache emptied")
