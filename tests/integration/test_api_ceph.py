"""The guide's chapter 2 with the real clients against three Ceph clusters (central, dcn0,
dcn1): imports and copies land as protected RBD snapshots, deletions remove the RBD images
from every cluster, and an image a VM was cloned from is not forced away: its deletion waits
(reported in the task and the pending-deletions metric) until the clone is gone. A cluster
that stops answering a download is a 503, as every other outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.ceph import Cluster, running_clusters
from tests.support.clients import Clients, properties, table, unauthenticated, web_download
from tests.support.images import make_sample_qcow2, qemu_img, sha512_of
from tests.support.services import require_tcp
from tests.support.web_source import web_source
from tests.support.workers import Topology, Worker, delete_topology, running_workers

pytestmark = pytest.mark.ceph

MiB = 1024 * 1024
STORES = ("central", "dcn0", "dcn1")


@dataclass
class CephCloud:
    """The API, two workers, three clusters and the sample image."""

    api: ApiProcess
    config: Path
    workers: list[Worker]
    clusters: dict[str, Cluster]
    clients: Clients
    source: str
    raw_sha512: str

    def settled(self, image_id: str) -> dict[str, Any]:
        """The image once no import holds it."""
        return self.api.settled(image_id)

    def pending_deletions(self) -> float:
        """``imgworker_deletions_pending`` as the first worker reports it."""
        for line in self.workers[0].metrics().splitlines():
            if line.startswith("imgworker_deletions_pending "):
                return float(line.split()[1])
        raise AssertionError("imgworker_deletions_pending is not exported")


def _config(root: Path, database: str, topology: Topology, clusters: dict[str, Cluster]) -> Path:
    lines = [
        f'[database]\nurl = "{database}"',
        f'[broker]\nqueue = "{topology.queue}"\nexchange = "{topology.exchange}"\n'
        f'dead_letter_exchange = "{topology.dead_exchange}"\n'
        f'dead_letter_queue = "{topology.dead_queue}"',
        "[worker]\nheartbeat_seconds = 1\nlease_seconds = 30\n"
        "sweep_seconds = 1\ndelete_retry_seconds = 2",
        f'[staging]\ndir = "{root / "staging"}"',
        '[stores]\ndefault = "central"',
        *(
            f'[stores.{name}]\ntype = "rbd"\nconf = "{cluster.conf}"\nchunk_size = {4 * MiB}\n'
            "connect_timeout = 5\noperation_timeout = 20"
            for name, cluster in clusters.items()
        ),
        "[safety]\nallow_private_addresses = true\nallowed_ports = []\nstaging_min_free_bytes = 0",
        '[api]\nshow_locations = "admin"',
    ]
    path = root / "imgworker.toml"
    path.write_text("\n\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephCloud]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("ceph-cloud")
    www = root / "www"
    www.mkdir()
    sample = make_sample_qcow2(www / "cirros.qcow2", 48 * MiB, 10 * MiB)
    raw = root / "cirros.raw"
    qemu_img("convert", "-f", "qcow2", "-O", "raw", str(sample), str(raw))
    topology = Topology()
    with running_clusters(3, root / "ceph") as started, fresh_postgres() as database:
        clusters = dict(zip(STORES, started, strict=True))
        config = _config(root, database, topology, clusters)
        try:
            with (
                web_source(www) as source,
                running_api(config, root) as api,
                running_workers(config, root, 2) as workers,
            ):
                clients = unauthenticated(api.url, root / "home")
                yield CephCloud(api, config, workers, clusters, clients, source, sha512_of(raw))
        finally:
            asyncio.run(delete_topology(topology))


def _snapshot_protected(cluster: Cluster, image_id: str) -> bool:
    snaps = json.loads(cluster.rbd("snap", "ls", image_id, "--format", "json"))
    return [snap["name"] for snap in snaps] == ["snap"] and cluster.rbd(
        "info", f"{image_id}@snap"
    ).count("protected: True") == 1


def _until(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.25)


def test_import_copy_download_and_delete_across_three_clusters(
    cloud: CephCloud, tmp_path: Path
) -> None:
    uri = f"{cloud.source}/cirros.qcow2"
    image_id = web_download(cloud.clients, "cirros-rbd", uri, "--stores", "central,dcn1")
    assert cloud.settled(image_id)["stores"] == "central,dcn1"
    cloud.clients.glance(
        "image-import", image_id, "--all-stores", "true", "--import-method", "copy-image"
    ).ok()
    image = cloud.settled(image_id)
    assert (image["stores"], image["disk_format"]) == ("central,dcn1,dcn0", "raw")
    listed = table(cloud.clients.glance("image-list", "--include-stores").ok().stdout)
    assert {"ID": image_id, "Name": "cirros-rbd", "Stores": "central,dcn1,dcn0"} in listed
    for name, cluster in cloud.clusters.items():
        assert image_id in cluster.images(), name
        assert _snapshot_protected(cluster, image_id), name
    shown = properties(
        cloud.clients.openstack("image", "show", image_id, "-c", "properties").ok().stdout
    )
    for name, cluster in cloud.clusters.items():
        url = f"rbd://{cluster.fsid}/images/{image_id}/snap"
        assert f"'url': '{url}', 'metadata': {{'store': '{name}'}}" in shown["properties"]
    target = tmp_path / "download.raw"
    cloud.clients.glance("image-download", image_id, "--file", str(target)).ok()
    assert sha512_of(target) == cloud.raw_sha512 == image["os_hash_value"]

    cloud.clients.glance("stores-delete", "--store", "dcn0", image_id).ok()
    _until(lambda: image_id not in cloud.clusters["dcn0"].images(), "dcn0's RBD image removed")
    cloud.clients.glance("image-delete", image_id).ok()
    _until(
        lambda: all(image_id not in c.images() for c in cloud.clusters.values()),
        "every cluster's RBD image removed",
    )


def test_an_image_a_vm_was_cloned_from_waits_for_the_clone(cloud: CephCloud) -> None:
    uri = f"{cloud.source}/cirros.qcow2"
    image_id = web_download(cloud.clients, "cirros-booted", uri, "--stores", "central,dcn0")
    assert cloud.settled(image_id)["stores"] == "central,dcn0"
    edge = cloud.clusters["dcn0"]
    # What Nova does when a VM boots from the image at the edge: a copy-on-write clone.
    edge.rbd("clone", f"images/{image_id}@snap", "images/vm-disk")
    cloud.clients.glance("image-delete", image_id).ok()
    _until(lambda: image_id not in cloud.clusters["central"].images(), "central's copy removed")
    time.sleep(3)  # at least one retry by the sweeper
    assert image_id in edge.images(), "an image with a clone must not be forced away"
    assert cloud.pending_deletions() >= 1
    edge.rbd("rm", "vm-disk")  # the VM is deleted
    _until(lambda: image_id not in edge.images(), "dcn0's copy removed once the clone is gone")
    _until(lambda: cloud.pending_deletions() == 0, "no deletion pending")


def test_a_cluster_that_stops_answering_a_download_is_503(cloud: CephCloud, tmp_path: Path) -> None:
    uri = f"{cloud.source}/cirros.qcow2"
    image_id = web_download(cloud.clients, "cirros-unanswered", uri, "--stores", "central")
    assert cloud.settled(image_id)["stores"] == "central"
    # An API whose store gives up after 3 s (the module's waits 20 s for a slow cluster).
    short = {"IMGWORKER_STORES__CENTRAL__OPERATION_TIMEOUT": "3"}
    with running_api(cloud.config, tmp_path, "api-short-timeout", **short) as api:
        url = f"{api.url}/v2/images/{image_id}/file"
        asked = Request(url, headers={"Accept": "application/json"})
        with cloud.clusters["central"].osd_paused(), pytest.raises(HTTPError) as refused:
            urlopen(asked, timeout=60)
        assert refused.value.code == 503
        assert json.load(refused.value)["message"].startswith("store 'central': ")
        with urlopen(url, timeout=60) as answered:  # the cluster answers again
            assert hashlib.sha512(answered.read()).hexdigest() == cloud.raw_sha512
