"""The cache under faults: rotten files, clients that leave, stores that fail, a hard limit
under concurrent downloads, an API killed in the middle of a fill; and Range from the cache.

One ``imgworker api`` node (a real process, PostgreSQL, RabbitMQ, a file store). Slow fills
come from sparse images: a fill hashes every zero of them (as the image's os_hash_value
covers them) while the store sends almost nothing, so there is time to interfere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
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
from tests.support.images import MiB, make_sparse_raw
from tests.support.services import require_tcp
from tests.support.workers import IMGWORKER, Topology, delete_topology
from worker.cache.entry_file import BLOCK_SIZE, footprint

#: Holds three 5 MiB images and a bit, never four.
MAX_SIZE = 3 * footprint(5 * MiB) + MiB
#: A sparse image whose fill takes seconds: 1 MiB of data every 64 MiB (a fill reads the
#: store a few segments ahead of its hashing; these keep it from reaching the end early).
SLOW_SIZE = 640 * MiB
SLOW_EXTENTS = [(offset, MiB) for offset in range(0, SLOW_SIZE, 64 * MiB)]


@dataclass
class Site:
    """One node, its configuration, and images to read."""

    root: Path
    config: Path
    node: Node
    small: dict[str, bytes]
    slow: str

    def path(self, image_id: str) -> str:
        """The download path of an image."""
        return f"{self.node.url}/v2/images/{image_id}/file"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("cache-safety")
    topology = Topology()
    with fresh_postgres() as database:
        config = cache_config(root, database, topology, max_size=max(MAX_SIZE, 2 * SLOW_SIZE))
        small = {}
        for n in range(5):
            source = root / f"small{n}.raw"
            make_sparse_raw(source, 5 * MiB, [(0, 5 * MiB)], seed=n + 1)
            small[asyncio.run(active_image(config, source)).id] = source.read_bytes()
        slow_source = root / "slow.raw"
        make_sparse_raw(slow_source, SLOW_SIZE, SLOW_EXTENTS, seed=42)
        slow = asyncio.run(active_image(config, slow_source)).id
        slow_source.unlink()
        try:
            with running_nodes(config, root, "solo") as (node,):
                yield Site(root, config, node, small, slow)
        finally:
            asyncio.run(delete_cache_topology(topology, ["solo", "limited", "killed"]))
            asyncio.run(delete_topology(topology))


async def _download(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        return reply.status, await reply.read()


def _flip(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


async def test_range_requests_are_answered_from_the_cached_file(site: Site) -> None:
    image_id, data = next(iter(site.small.items()))
    assert await _download(site.path(image_id)) == (200, data)
    assert site.node.entries() and image_id in site.node.entries()
    hits = site.node.metric("imgworker_cache_hits_total")
    cases = {
        f"bytes={BLOCK_SIZE - 3}-{BLOCK_SIZE + 2}": data[BLOCK_SIZE - 3 : BLOCK_SIZE + 3],
        "bytes=-10": data[-10:],
        f"bytes={len(data) - 5}-": data[-5:],
        "bytes=0-0": data[:1],
    }
    async with aiohttp.ClientSession() as session:
        for header, expected in cases.items():
            async with session.get(site.path(image_id), headers={"Range": header}) as reply:
                assert reply.status == 206, header
                assert await reply.read() == expected, header
                assert reply.headers["Content-Range"].endswith(f"/{len(data)}")
        async with session.get(site.path(image_id), headers={"Range": "bytes=99999999-"}) as r:
            assert (r.status, r.headers["Content-Range"]) == (416, f"bytes */{len(data)}")
        async with session.get(site.path(image_id), headers={"Range": "bytes=0-1,4-5"}) as r:
            assert r.status == 400
    assert site.node.metric("imgworker_cache_hits_total") == hits + len(cases)


async def test_a_rotten_cached_block_is_never_served_as_good(site: Site) -> None:
    image_id, data = list(site.small.items())[1]
    assert await _download(site.path(image_id)) == (200, data)
    entry = site.node.directory / "images" / image_id
    corrupt = site.node.metric("imgworker_cache_evictions_total", reason="corrupt")

    _flip(entry, BLOCK_SIZE + 123)  # in the second block: the first was already sent
    with pytest.raises(aiohttp.ClientPayloadError):
        await _download(site.path(image_id))
    assert site.node.metric("imgworker_cache_evictions_total", reason="corrupt") == corrupt + 1
    assert image_id not in site.node.entries()

    assert await _download(site.path(image_id)) == (200, data)  # filled again from the store
    _flip(entry, 77)  # in the first block: found before a byte is sent, read from the store
    assert await _download(site.path(image_id)) == (200, data)
    assert site.node.metric("imgworker_cache_evictions_total", reason="corrupt") == corrupt + 2
    assert await _download(site.path(image_id)) == (200, data)
    assert image_id in site.node.entries()


async def test_a_client_leaving_mid_fill_leaves_no_entry(site: Site) -> None:
    abandoned = site.node.metric("imgworker_cache_fill_failures_total", reason="abandoned")
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.get(site.path(site.slow)))
        await asyncio.to_thread(eventually, site.node.partials, 30, "the fill started")
        request.cancel()
    await asyncio.to_thread(
        eventually,
        lambda: (
            site.node.metric("imgworker_cache_fill_failures_total", reason="abandoned")
            == abandoned + 1
        ),
        30,
        "the fill abandoned",
    )
    assert site.node.partials() == [] and site.slow not in site.node.entries()


async def test_a_store_failing_mid_fill_leaves_no_entry(site: Site, tmp_path: Path) -> None:
    store_file = site.root / "stores" / "central" / site.slow
    kept = tmp_path / "kept"
    os.link(store_file, kept)
    failed = _store_failures(site.node)
    try:
        download = asyncio.ensure_future(_download(site.path(site.slow)))
        await asyncio.to_thread(eventually, site.node.partials, 30, "the fill started")
        os.truncate(store_file, MiB)  # the rest is gone while the fill reads
        try:
            status, _ = await download
            assert status == 503  # it failed before the first byte
        except aiohttp.ClientPayloadError:
            pass  # it failed after: the download is cut short, never complete
    finally:
        # The store file gets its data back (a fresh copy: the link shares the inode).
        store_file.unlink()
        kept.rename(store_file)
        os.truncate(store_file, SLOW_SIZE)
    assert _store_failures(site.node) == failed + 1
    assert site.node.partials() == [] and site.slow not in site.node.entries()


def _store_failures(node: Node) -> float:
    """Fills failed by their store: a read error, or fewer or other bytes than the image's
    (which one a truncated file gives depends on where the read was when it was cut)."""
    failures = "imgworker_cache_fill_failures_total"
    return node.metric(failures, reason="store") + node.metric(failures, reason="mismatch")


async def test_the_hard_limit_holds_under_concurrent_downloads(site: Site) -> None:
    limited = start_node(site.config, site.root, "limited", IMGWORKER_CACHE__MAX_SIZE=str(MAX_SIZE))
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for place in ("images", "incomplete"):
                folder = limited.directory / place
                for path in folder.iterdir() if folder.exists() else []:
                    with contextlib.suppress(FileNotFoundError):
                        total += path.stat().st_size
            peak[0] = max(peak[0], total)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        chosen = random.Random(7).choices(list(site.small), k=36)
        results = []
        for wave in range(0, len(chosen), 12):  # the later waves evict what the first kept
            urls = [f"{limited.url}/v2/images/{i}/file" for i in chosen[wave : wave + 12]]
            results += await asyncio.gather(*(_download(url) for url in urls))
        evicted = limited.metric("imgworker_cache_evictions_total", reason="lru")
    finally:
        stop.set()
        sampler.join()
        stop_node(limited)
    assert [status for status, _ in results] == [200] * len(chosen)
    for image_id, (_, body) in zip(chosen, results, strict=True):
        assert hashlib.sha512(body).digest() == hashlib.sha512(site.small[image_id]).digest()
    assert 0 < peak[0] <= MAX_SIZE
    assert evicted > 0 and len(limited.entries()) <= 3


async def test_an_api_killed_mid_fill_leaves_nothing_the_next_start_keeps(site: Site) -> None:
    cached_id = list(site.small)[2]
    node = start_node(site.config, site.root, "killed")
    try:
        url = f"{node.url}/v2/images"
        assert (await _download(f"{url}/{cached_id}/file"))[0] == 200
        (node.directory / "images" / cached_id).unlink()  # lost while its row says held
        async with aiohttp.ClientSession() as session:
            request = asyncio.ensure_future(session.get(f"{url}/{site.slow}/file"))
            await asyncio.to_thread(eventually, node.partials, 30, "the fill started")
            stop_node(node, signal.SIGKILL)
            request.cancel()
        assert [name.split(".")[0] for name in node.partials()] == [site.slow]
        node = start_node(site.config, site.root, "killed")
        assert node.partials() == [] and node.entries() == []
        listed = await _cache_state(node)
        assert listed == {"cached_images": [], "queued_images": []}
        rows = subprocess.run(
            [IMGWORKER, "cache", "list-cached", "--node", "killed"],
            env=dict(os.environ, IMGWORKER_CONFIG=str(site.config)),
            capture_output=True,
            text=True,
            check=True,
        )
        assert rows.stdout.strip() == "No cached images."  # the lost entry's row went too
        assert (await _download(f"{node.url}/v2/images/{cached_id}/file"))[0] == 200
    finally:
        stop_node(node)


async def _cache_state(node: Node) -> object:
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/v2/cache") as reply:
        return await reply.json()
