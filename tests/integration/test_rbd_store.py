"""The rbd store against real Ceph clusters: sparse writes, snapshot, copy, cleanup, failure,
and what a killed writer leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.errors import StoreFailed, StoreUnavailable
from flows.sparse import ZERO_BLOCK, ImageReader, SparseFileReader
from flows.stores.rbd import RbdLocation, RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from flows.stores.rbd_images import RbdImages
from tests.support.ceph import Cluster, leave_a_dead_writer, running_clusters
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


def _mark(cluster: Cluster, image_id: str) -> dict[str, str]:
    return dict(json.loads(cluster.rbd("image-meta", "list", image_id, "--format", "json")))


def _snapshots(cluster: Cluster, image_id: str) -> list[tuple[str, bool]]:
    listed = json.loads(cluster.rbd("snap", "ls", image_id, "--format", "json"))
    return [(snap["name"], snap.get("protected") == "true") for snap in listed]


async def test_a_write_meeting_a_dead_writers_image_frees_it_and_writes(
    clusters: list[Cluster], source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The dead writer's watch would keep the image busy for 30 s: it is blocklisted."""
    caplog.set_level(logging.INFO, logger="flows.stores.rbd_images")
    cluster = clusters[0]
    image_id = str(uuid.uuid4())
    await asyncio.to_thread(leave_a_dead_writer, cluster.conf, image_id, "task-1")
    assert "watcher=" in cluster.rbd("status", image_id)
    assert _mark(cluster, image_id)["imgworker.task"] == "task-1"
    store = _store("central", cluster)
    try:
        stored = await store.add(image_id, SparseFileReader(source), task_id="task-1")
        assert _digest(await store.open(stored.url)) == _digest(SparseFileReader(source))
        assert _snapshots(cluster, image_id) == [("snap", True)]
        assert "watcher=" not in cluster.rbd("status", image_id)
        log = caplog.text
        assert f"rbd image images/{image_id} already exists in central" in log
        assert "left by task task-1, written by client." in log
        assert f"freed rbd image images/{image_id} in central: blocklisted client." in log
        assert "waiting" not in log  # freed at once
        # The same write once more meets its own finished image: cleared and written again.
        again = await store.add(image_id, SparseFileReader(source), task_id="task-2")
        assert again.url == stored.url
        assert _mark(cluster, image_id)["imgworker.task"] == "task-2"
        assert _snapshots(cluster, image_id) == [("snap", True)]
    finally:
        await store.discard(image_id)
        await store.close()
    assert image_id not in cluster.images()


@contextlib.contextmanager
def _watch_timeout(cluster: Cluster, seconds: int) -> Iterator[None]:
    """Set the OSD's watch timeout (osd_client_watch_timeout) for the duration."""
    subprocess.run(
        [
            "ceph",
            "-c",
            cluster.conf,
            "config",
            "set",
            "osd",
            "osd_client_watch_timeout",
            str(seconds),
        ],
        check=True,
        timeout=60,
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ceph", "-c", cluster.conf, "config", "rm", "osd", "osd_client_watch_timeout"],
            check=True,
            timeout=60,
        )


class _WithoutBlocklistCaps:
    """A cluster handle whose Ceph user lacks the 'osd blocklist' cap (the test clusters run
    without cephx, where Ceph would answer EACCES): everything else is the real handle."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def blocklist_add(self, address: str, expire: int = 0) -> None:
        import rados

        raise rados.PermissionDeniedError("[errno 13] error blocklisting client", errno=13)


async def test_without_blocklisting_a_takeover_waits_out_the_dead_writers_watch(
    clusters: list[Cluster], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blocklisting turned off (rbd_blocklist_on_break_lock), or refused for want of the cap:
    the leftover is cleared once the watch expires, and the log says why it waited."""
    import rados

    caplog.set_level(logging.INFO, logger="flows.stores.rbd_images")
    cluster = clusters[1]
    conf = tmp_path / "no-blocklist.conf"
    conf.write_text(
        Path(cluster.conf).read_text() + "\n[client]\nrbd blocklist on break lock = false\n"
    )
    off, refused = str(uuid.uuid4()), str(uuid.uuid4())
    with _watch_timeout(cluster, 8):
        for image_id in (off, refused):
            await asyncio.to_thread(leave_a_dead_writer, cluster.conf, image_id, "task-1")
        store = _store("dcn0", cluster, conf=str(conf))
        images = RbdImages("dcn0", RbdStoreConfig(type="rbd", conf=cluster.conf))

        def clear_without_caps() -> None:
            with rados.Rados(conffile=cluster.conf) as handle, handle.open_ioctx("images") as ioctx:
                images.clear(_WithoutBlocklistCaps(handle), ioctx, refused, threading.Event())

        started = time.monotonic()
        try:
            await asyncio.gather(store.discard(off), asyncio.to_thread(clear_without_caps))
        finally:
            await store.close()
        waited = time.monotonic() - started
    assert off not in cluster.images() and refused not in cluster.images()
    assert 2 < waited < 20
    log = caplog.text
    assert "rbd_blocklist_on_break_lock is false, so it is not blocklisted" in log
    assert "the Ceph user 'admin' may not blocklist it" in log
    assert "give it the mon cap 'profile rbd'" in log
    for image_id in (off, refused):
        assert f"the watch on rbd image images/{image_id} in dcn0 expired after" in log
    assert "freed" not in log


async def test_an_image_imgworker_did_not_write_is_refused_never_removed(
    clusters: list[Cluster], source: Path
) -> None:
    cluster = clusters[0]
    foreign, empty = str(uuid.uuid4()), str(uuid.uuid4())
    cluster.rbd("create", "--size", "4M", foreign)
    cluster.rbd("bench", "--io-type", "write", "--io-total", "1M", foreign)
    cluster.rbd("create", "--size", "4M", empty)
    store = _store("central", cluster)
    try:
        with pytest.raises(StoreFailed, match="not written by imgworker") as refused:
            await store.discard(foreign)
        assert "rbd snap purge, rbd rm" in str(refused.value)
        with pytest.raises(StoreFailed, match="not written by imgworker"):
            await store.add(foreign, SparseFileReader(source), task_id="task-1")
        assert foreign in cluster.images() and cluster.allocated_bytes(foreign) > 0
        # An unmarked image that holds nothing: a writer that died before marking it.
        await store.discard(empty)
        assert empty not in cluster.images()
    finally:
        await store.close()
        cluster.rbd("rm", foreign)


def test_config_check_says_how_a_takeover_frees_a_dead_writer(
    clusters: list[Cluster], tmp_path: Path
) -> None:
    """Blocklisting: said so. Blocklisting off with a lease under the watch timeout: warned."""
    from click.testing import CliRunner

    from worker.commands import main

    no_blocklist = tmp_path / "no-blocklist.conf"
    no_blocklist.write_text(
        Path(clusters[1].conf).read_text() + "\n[client]\nrbd blocklist on break lock = false\n"
    )
    config = tmp_path / "imgworker.toml"
    config.write_text(
        "[worker]\nlease_seconds = 8\nheartbeat_seconds = 2\n"
        '[stores]\ndefault = "central"\n'
        f'[stores.central]\ntype = "rbd"\nconf = "{clusters[0].conf}"\n'
        f'[stores.dcn0]\ntype = "rbd"\nconf = "{no_blocklist}"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0, result.output
    assert "takeover central: a dead writer is blocklisted at once" in result.output
    assert "'osd blocklist' mon cap, as in 'profile rbd'" in result.output
    assert "WARNING  [stores.central]" not in result.output
    assert "takeover dcn0: rbd_blocklist_on_break_lock is false" in result.output
    assert (
        "WARNING  [stores.dcn0]: lease_seconds (8) is shorter than Ceph's watch timeout "
        "(osd_client_watch_timeout = 30 s)" in result.output
    )
    config.write_text(config.read_text().replace("lease_seconds = 8", "lease_seconds = 30"))
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0 and "WARNING  [stores." not in result.output, result.output
