"""The rbd store against real Ceph clusters: sparse writes, snapshot, copy, cleanup, failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.errors import StoreUnavailable
from flows.sparse import ZERO_BLOCK, ImageReader, SparseFileReader
from flows.stores.rbd import RbdLocation, RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from tests.support.ceph import Cluster, running_clusters
from tests.support.images import MiB, make_sparse_raw, reader_sha256

pytestmark = pytest.mark.ceph

CHUNK = 4 * MiB
VIRTUAL = 64 * MiB
EXTENTS = [(0, MiB), (9 * MiB + 4096, 5 * MiB), (40 * MiB, 2 * MiB), (VIRTUAL - MiB, MiB)]
DATA = sum(length for _, length in EXTENTS)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Cluster]]:
    # BlueStore on a file: its allocation counters show what the pool really holds.
    with running_clusters(2, tmp_path_factory.mktemp("ceph"), "bluestore") as started:
        yield started


def _store(name: str, cluster: Cluster, **overrides: object) -> RbdStore:
    config = RbdStoreConfig(
        type="rbd", conf=cluster.conf, chunk_size=CHUNK, connect_timeout=5, operation_timeout=5
    )
    for key, value in overrides.items():
        object.__setattr__(config, key, value)
    return RbdStore(name, config)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.raw"
    make_sparse_raw(path, VIRTUAL, EXTENTS)
    return path


def _digest(reader: ImageReader) -> str:
    return reader_sha256(reader, CHUNK)


async def test_add_writes_sparsely_and_reads_back_exactly(
    clusters: list[Cluster], source: Path
) -> None:
    cluster = clusters[0]
    store = _store("central", cluster)
    image_id = str(uuid.uuid4())
    progress: list[tuple[int, int]] = []
    allocated_before = cluster.bluestore_allocated()
    try:
        stored = await store.add(
            image_id, SparseFileReader(source), lambda w, s: progress.append((w, s))
        )
        assert stored.url == f"rbd://{cluster.fsid}/images/{image_id}/snap"
        assert (stored.size, stored.bytes_written) == (VIRTUAL, DATA)
        assert stored.bytes_skipped == VIRTUAL - DATA
        assert sum(w for w, _ in progress) == DATA
        assert store.owns(stored.url) and await store.exists(stored.url)
        assert "snap" in cluster.rbd("snap", "ls", image_id)
        assert (
            "true"
            in cluster.rbd("info", f"{image_id}@snap", "--format", "json")
            .replace(" ", "")
            .split('"protected":')[1][:6]
        )
        # The bar: the pool holds no more than the image's data plus one chunk.
        assert cluster.bluestore_allocated() - allocated_before <= DATA + CHUNK
        assert cluster.used_bytes(image_id) < VIRTUAL
        reader = await store.open(stored.url)
        assert _digest(reader) == _digest(SparseFileReader(source))
    finally:
        await store.discard(image_id)
        await store.close()
    assert image_id not in cluster.images()


async def test_copy_between_clusters_and_delete(clusters: list[Cluster], source: Path) -> None:
    central, edge = _store("central", clusters[0]), _store("dcn0", clusters[1])
    image_id = str(uuid.uuid4())
    try:
        first = await central.add(image_id, SparseFileReader(source))
        copy = await edge.add(image_id, await central.open(first.url))
        assert RbdLocation.parse(copy.url).fsid == clusters[1].fsid != clusters[0].fsid
        # Reading back, zeros are found at ZERO_BLOCK granularity inside allocated objects.
        assert DATA <= copy.bytes_written <= DATA + 2 * len(EXTENTS) * ZERO_BLOCK
        assert _digest(await edge.open(copy.url)) == _digest(SparseFileReader(source))
        assert not central.owns(copy.url)
        await edge.delete(copy.url)
        await edge.delete(copy.url)  # already gone: not an error
        assert not await edge.exists(copy.url)
        assert image_id not in clusters[1].images()
    finally:
        await central.discard(image_id)
        await edge.discard(image_id)
        await central.close()
        await edge.close()


async def test_thick_provisioning_writes_zeros(clusters: list[Cluster], source: Path) -> None:
    store = _store("central", clusters[0], thin_provisioning=False)
    image_id = str(uuid.uuid4())
    try:
        stored = await store.add(image_id, SparseFileReader(source))
        assert (stored.bytes_written, stored.bytes_skipped) == (VIRTUAL, 0)
    finally:
        await store.discard(image_id)
        await store.close()


async def test_a_dead_site_fails_within_the_timeouts_and_leaves_nothing(
    clusters: list[Cluster], source: Path
) -> None:
    cluster = clusters[1]
    store = _store("dcn0", cluster, operation_timeout=3)
    image_id = str(uuid.uuid4())
    try:
        assert await store.connect() == cluster.fsid
        with cluster.osd_paused(), pytest.raises(StoreUnavailable) as failed:
            await store.add(image_id, SparseFileReader(source))
        assert failed.value.store == "dcn0"
        assert failed.value.transient
        assert "timeout" in failed.value.detail.lower()
        await store.discard(image_id)
        assert image_id not in cluster.images()
    finally:
        await store.close()


async def test_unreachable_cluster_fails_fast(tmp_path: Path, source: Path) -> None:
    conf = tmp_path / "nowhere.conf"
    conf.write_text(
        "[global]\nfsid = 00000000-0000-0000-0000-000000000000\n"
        "mon host = v2:127.0.0.1:1\nauth client required = none\n"
    )
    config = RbdStoreConfig(type="rbd", conf=str(conf), connect_timeout=2, operation_timeout=2)
    store = RbdStore("dcn1", config)
    with pytest.raises(StoreUnavailable, match="dcn1") as failed:
        await store.add("x", SparseFileReader(source))
    assert failed.value.transient
    await store.close()
