"""A worker killed -9 while it writes an RBD store: another worker takes the import over, frees
the half-written image the dead writer still watches (blocklisting it) and finishes (issue 25).

Three Ceph sites (central, dcn0, dcn1) behind rate-limited links, so that a write lasts long
enough to be caught half-way by watching the image grow; ``lease_seconds`` is far shorter
than Ceph's 30 s watch timeout, so a takeover that waited for the watch would be slower than
the lease by design.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.records import FAILED_IMPORT, IMPORTING_TO_STORES
from flows.request import ImportRequest
from tests.support.ceph import Cluster, running_clusters
from tests.support.enqueue import enqueue
from tests.support.http import serve_directory
from tests.support.images import MiB, make_sparse_raw, sha512_of
from tests.support.tasks import opened, terminal, until
from tests.support.workers import Topology, Worker, running_workers, start_worker, write_config
from worker.db.catalog import NewImage
from worker.tasks.embedded import import_image
from worker.tasks.services import Services

pytestmark = [pytest.mark.ceph, pytest.mark.rabbitmq, pytest.mark.postgres]

SITES = ("central", "dcn0", "dcn1")
#: Slow enough that writing EXTENTS' 4 MiB into a site lasts a second or two.
RATE = "32mbit"
VIRTUAL = 32 * MiB
#: Whole 1 MiB RBD objects, so the bytes an image holds grow one object at a time.
EXTENTS = [(0, MiB), (9 * MiB, MiB), (20 * MiB, MiB), (31 * MiB, MiB)]
#: Far shorter than Ceph's watch timeout (osd_client_watch_timeout, 30 s).
LEASE = 6


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    with running_clusters(3, tmp_path_factory.mktemp("ceph"), rate=RATE) as started:
        yield dict(zip(SITES, started, strict=True))


@dataclass(frozen=True)
class Import:
    """One import under test."""

    label: str
    image_id: str
    task_id: str
    copy: bool


def _config(root: Path, database: str, topology: Topology, clusters: dict[str, Cluster]) -> Path:
    rbd = {
        # One write in flight: the extents land one after the other, a second or so apart.
        name: {
            "conf": c.conf,
            "chunk_size": MiB,
            "writes_in_flight": 1,
            "connect_timeout": 10,
            "operation_timeout": 30,
        }
        for name, c in clusters.items()
    }
    return write_config(
        root,
        database,
        topology,
        stores=(*SITES, "local"),
        lease_seconds=LEASE,
        heartbeat_seconds=1,
        concurrency=1,
        rbd=rbd,
    )


async def _source_in_local(services: Services, raw: Path) -> str:
    """An image whose data is in the file store ``local`` (what copy-image copies from)."""
    result = await import_image(services, file=raw, disk_format="raw", stores=["local"])
    assert result.outcome.status == "success", result.outcome.message
    return result.image.id


async def _enqueue(
    services: Services, *, base: str | None = None, source: str | None = None, required: bool
) -> Import:
    """A web-download of ``base``/disk.raw, or a copy-image of ``source``, into every site."""
    mode = "every store required" if required else "failure allowed"
    if source is None:
        image = await services.records.catalog.create(
            NewImage(owner=None, name="it", disk_format="raw", container_format="bare")
        )
        request = ImportRequest(
            method="web-download",
            uri=f"{base}/disk.raw",
            stores=SITES,
            all_stores_must_succeed=required,
        )
        task_id = await enqueue(services, image.id, request)
        return Import(f"web-download, {mode}", image.id, task_id, copy=False)
    request = ImportRequest(method="copy-image", stores=SITES, all_stores_must_succeed=required)
    task_id = await enqueue(services, source, request)
    return Import(f"copy-image, {mode}", source, task_id, copy=True)


class Sites:
    """The test's own look into the three sites' pools, one client per site (connected once:
    connecting over a busy link is slow)."""

    def __init__(self, clusters: dict[str, Cluster]) -> None:
        import rados

        self._clients = {name: rados.Rados(conffile=c.conf) for name, c in clusters.items()}
        for client in self._clients.values():
            client.connect()
        self._prefixes: dict[tuple[str, str], str] = {}

    def close(self) -> None:
        """Disconnect."""
        for client in self._clients.values():
            client.shutdown()

    def half_written(self, site: str, image: str) -> bool:
        """Whether ``image`` in ``site`` holds its first extent but not yet its last.

        A few small reads per look: the link is busy with the write being watched, and each
        request waits behind it. The data objects are stat'ed directly (:data:`EXTENTS` fill
        whole objects), instead of listing every extent.
        """
        import rados

        with self._clients[site].open_ioctx("images") as ioctx:
            prefix = self._prefixes.get((site, image))
            if prefix is None:
                try:
                    # rbd_id.NAME holds the image's id, a length-prefixed string.
                    prefix = f"rbd_data.{ioctx.read(f'rbd_id.{image}')[4:].decode()}"
                except rados.ObjectNotFound:
                    return False
                self._prefixes[(site, image)] = prefix
            first, last = (offset // MiB for offset in (EXTENTS[0][0], EXTENTS[-1][0]))
            try:
                ioctx.stat(f"{prefix}.{first:016x}")
            except rados.ObjectNotFound:
                return False
            try:
                ioctx.stat(f"{prefix}.{last:016x}")
            except rados.ObjectNotFound:
                return True
            return False

    def pool(self, site: str) -> dict[str, list[tuple[str, bool]]]:
        """Every image in ``site``'s pool, with its snapshots and whether each is protected."""
        import rbd

        found: dict[str, list[tuple[str, bool]]] = {}
        with self._clients[site].open_ioctx("images") as ioctx:
            for name in rbd.RBD().list(ioctx):
                with rbd.Image(ioctx, name, read_only=True) as image:
                    snaps = [str(snap["name"]) for snap in image.list_snaps()]
                    found[name] = [(snap, image.is_protected_snap(snap)) for snap in snaps]
        return found


@contextmanager
def looking_into(clusters: dict[str, Cluster]) -> Iterator[Sites]:
    """A :class:`Sites` for the duration."""
    sites = Sites(clusters)
    try:
        yield sites
    finally:
        sites.close()


async def _kill_mid_write(
    services: Services, item: Import, sites: Sites, site: str, workers: list[Worker]
) -> Worker:
    """SIGKILL the worker running ``item`` once its image holds part of its data in ``site``:
    the write is under way and not finished."""

    async def half_written() -> bool:
        return await asyncio.to_thread(sites.half_written, site, item.image_id)

    await until(half_written, 120, f"{item.label}: a write half-way", every=0.02)
    holder = (await services.tasks.get(item.task_id)).claimed_by
    victim = next(w for w in workers if w.name == holder)
    os.kill(victim.process.pid, signal.SIGKILL)
    await asyncio.to_thread(victim.process.wait)
    return victim


async def _sha512_at(services: Services, store: str, url: str) -> str:
    reader = await services.stores[store].open(url)
    digest = hashlib.sha512()
    for segment in await asyncio.to_thread(lambda: list(reader.segments(4 * MiB))):
        digest.update(segment.data if segment.data is not None else bytes(segment.length))
    return digest.hexdigest()


async def _check_finished(
    services: Services, items: list[Import], sites: Sites, expected: str
) -> None:
    """Every import active in every site with exactly the source's bytes; nothing else left."""
    reads = []
    for item in items:
        task = await services.tasks.get(item.task_id)
        assert task.status == "success", f"{item.label}: {task.message}"
        image = await services.images.get(item.image_id)
        assert image.status == "active", item.label
        wanted = [*SITES, "local"] if item.copy else list(SITES)
        assert sorted(image.stores) == sorted(wanted), item.label
        assert image.store_list(IMPORTING_TO_STORES) == [] == image.store_list(FAILED_IMPORT)
        reads += [(item, location.store, location.url) for location in image.locations]
    # Read back at once: each site's link is slow, and the three are independent.
    digests = await asyncio.gather(*(_sha512_at(services, s, url) for _, s, url in reads))
    for (item, store, _), digest in zip(reads, digests, strict=True):
        assert digest == expected, f"{item.label}: {store} holds other bytes"
    # Each site's pool holds the four images, each with its protected snapshot: nothing else.
    wanted = {item.image_id: [("snap", True)] for item in items}
    for site in SITES:
        assert await asyncio.to_thread(sites.pool, site) == wanted, f"{site} holds more"


async def _remove_rbd_data(services: Services, items: list[Import]) -> None:
    """Leave the pools empty for the next test."""
    removals = []
    for item in items:
        for location in (await services.images.get(item.image_id)).locations:
            if location.store in SITES:
                removals.append(services.stores[location.store].delete(location.url))
    await asyncio.gather(*removals)


async def _start_survivor(
    services: Services, items: list[Import], config: Path, root: Path, workers: list[Worker]
) -> None:
    """Start the worker that takes the imports over, once each import is on a worker of its
    own (so that it got none of them); it joins ``workers``."""

    async def each_on_its_own_worker() -> bool:
        holders = [(await services.tasks.get(item.task_id)).claimed_by for item in items]
        return None not in holders and len(set(holders)) == len(items)

    await until(each_on_its_own_worker, 60, "every import on a worker of its own")
    # Not waited for: this event loop serves the downloads meanwhile.
    env = {"IMGWORKER_WORKER__CONCURRENCY": str(len(items))}
    workers.append(start_worker(config, "survivor", root, env=env, until=None))


@pytest.mark.parametrize("site", SITES, ids=["first", "middle", "last"])
async def test_a_worker_killed_mid_rbd_write_is_finished_by_another(
    tmp_path: Path,
    postgres_url: str,
    broker_topology: Topology,
    clusters: dict[str, Cluster],
    site: str,
) -> None:
    """Four imports at once (web-download and copy-image; every store required, and failure
    allowed), each on a worker of its own, each worker killed while it writes ``site``; one
    more worker takes the four over."""
    config = _config(tmp_path, postgres_url, broker_topology, clusters)
    www = tmp_path / "www"
    www.mkdir()
    raw = www / "disk.raw"
    make_sparse_raw(raw, VIRTUAL, EXTENTS)
    expected = sha512_of(raw)
    items: list[Import] = []
    async with opened(config) as services, serve_directory(www) as base:
        sources = [await _source_in_local(services, raw) for _ in range(2)]
        try:
            with (
                looking_into(clusters) as sites,
                running_workers(config, tmp_path, 4, at_once=True) as workers,
            ):
                for name in SITES:
                    assert await asyncio.to_thread(sites.pool, name) == {}
                items = [
                    await _enqueue(services, base=base, required=True),
                    await _enqueue(services, base=base, required=False),
                    await _enqueue(services, source=sources[0], required=True),
                    await _enqueue(services, source=sources[1], required=False),
                ]
                kills = asyncio.gather(
                    *(_kill_mid_write(services, i, sites, site, workers) for i in items)
                )
                await _start_survivor(services, items, config, tmp_path, workers)
                await kills
                for item in items:
                    await terminal(services, item.task_id, timeout=180)
                await _check_finished(services, items, sites, expected)
                log = "".join(worker.output() for worker in workers)
                for item in items:
                    freed = f"freed rbd image images/{item.image_id} in {site}: blocklisted"
                    assert freed in log, f"{item.label}: the log does not say what was freed"
        finally:
            await _remove_rbd_data(services, items)
