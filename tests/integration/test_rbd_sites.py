"""Edge sites whose links can be measured: Ceph clusters in network namespaces behind
tbf-shaped veth pairs (``CEPH_SITE_RATE``), and their removal by ceph-down.sh."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.sparse import SparseFileReader
from flows.stores.rbd import RbdStore
from flows.stores.rbd_config import RbdStoreConfig
from tests.support.ceph import (
    DOWN,
    UP,
    Cluster,
    Site,
    require_ceph,
    require_sites,
    running_clusters,
)
from tests.support.images import MiB, make_sparse_raw, reader_sha256

pytestmark = pytest.mark.ceph

RATE = "200mbit"
CHUNK = 4 * MiB
SIZE = 32 * MiB
#: Above the rate by no more than the tbf burst and the counting window allow.
TOLERANCE = 1.10


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Cluster]]:
    with running_clusters(2, tmp_path_factory.mktemp("ceph"), rate=RATE) as started:
        yield started


def _store(name: str, cluster: Cluster) -> RbdStore:
    config = RbdStoreConfig(
        type="rbd", conf=cluster.conf, chunk_size=CHUNK, connect_timeout=10, operation_timeout=30
    )
    return RbdStore(name, config)


def _site(cluster: Cluster) -> Site:
    assert cluster.site is not None, f"{cluster.directory} is not a site"
    return cluster.site


async def test_writes_and_reads_cross_each_sites_limited_link(
    sites: list[Cluster], tmp_path: Path
) -> None:
    source = tmp_path / "dense.raw"
    make_sparse_raw(source, SIZE, [(0, SIZE)])  # random data: nothing to skip
    central, edge = _site(sites[0]), _site(sites[1])
    assert central.rate == edge.rate == 200_000_000 // 8
    assert central.site_addr in Path(sites[0].conf).read_text()
    first, second = _store("central", sites[0]), _store("dcn0", sites[1])
    image_id = str(uuid.uuid4())
    try:
        await first.connect()
        await second.connect()
        before = central.sample(), edge.sample()
        stored = await first.add(image_id, SparseFileReader(source))
        after = central.sample(), edge.sample()
        assert stored.bytes_written == SIZE
        # Every byte crossed central's link, held back by its tbf, at no more than its rate;
        # none crossed the other site's link.
        assert after[0].sent - before[0].sent >= SIZE
        assert after[0].overlimits > before[0].overlimits
        assert central.busy(before[0], after[0]) <= TOLERANCE
        assert after[1].sent - before[1].sent < MiB

        # Copying to the edge reads through central's link back and writes through the edge's.
        before = central.sample(), edge.sample()
        copy = await second.add(image_id, await first.open(stored.url))
        after = central.sample(), edge.sample()
        assert after[0].received - before[0].received >= SIZE
        assert central.busy(before[0], after[0], towards_site=False) <= TOLERANCE
        assert after[1].sent - before[1].sent >= SIZE
        assert edge.busy(before[1], after[1]) <= TOLERANCE

        expected = reader_sha256(SparseFileReader(source), CHUNK)
        assert reader_sha256(await first.open(stored.url), CHUNK) == expected
        assert reader_sha256(await second.open(copy.url), CHUNK) == expected
    finally:
        await first.discard(image_id)
        await second.discard(image_id)
        await first.close()
        await second.close()


def _up(directory: Path, rate: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CEPH_SITE_RATE=rate)
    env.pop("CEPH_SITE_RATES", None)
    return subprocess.run(
        [str(UP), "1", str(directory)], capture_output=True, text=True, timeout=300, env=env
    )


def _down(directory: Path) -> None:
    subprocess.run([str(DOWN), str(directory)], check=True, timeout=120)


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _record(directory: Path) -> dict[str, str]:
    lines = (directory / "c0" / "site.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_ceph_down_removes_its_sites_and_leaves_others_alone(tmp_path: Path) -> None:
    require_ceph()
    require_sites()
    directory = tmp_path / "ceph"
    started = _up(directory, "100mbit")
    assert started.returncode == 0, started.stderr
    record = _record(directory)
    ours = record["netns"], record["host_veth"]
    # Look-alikes of ours that ceph-up did not make: a name prefix is no licence to remove.
    other_netns, other_veth = f"{record['netns']}x", f"{record['host_veth']}x"
    subprocess.run(["ip", "netns", "add", other_netns], check=True)
    try:
        subprocess.run(
            ["ip", "link", "add", other_veth, "type", "veth", "peer", "name", f"{other_veth}y"],
            check=True,
        )
        assert _netns_exists(ours[0]) and _link_exists(ours[1])
        pids = [int(p.read_text()) for p in (directory / "c0" / "run").glob("*.pid")]
        _down(directory)
        assert not _netns_exists(ours[0]) and not _link_exists(ours[1])
        assert not directory.exists()
        assert not [pid for pid in pids if Path("/proc", str(pid)).exists()]
        assert _netns_exists(other_netns) and _link_exists(other_veth)
    finally:
        subprocess.run(["ip", "link", "del", other_veth], check=False)
        subprocess.run(["ip", "netns", "del", other_netns], check=False)


def test_a_half_made_site_is_removed_by_ceph_down(tmp_path: Path) -> None:
    require_sites()
    directory = tmp_path / "ceph"
    # tc refuses the rate after the namespace and the veth pair exist: a half-made site.
    failed = _up(directory, "fast")
    assert failed.returncode != 0
    assert "ceph-down.sh" in failed.stderr
    record = _record(directory)
    assert _netns_exists(record["netns"]) and _link_exists(record["host_veth"])
    _down(directory)
    assert not _netns_exists(record["netns"]) and not _link_exists(record["host_veth"])
