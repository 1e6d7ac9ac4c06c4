"""Imports into three real Ceph clusters (central, dcn0, dcn1): the guide's multi-store chapter."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.records import FAILED_IMPORT, IMPORTING_TO_STORES
from flows.stores.rbd import RbdLocation, RbdStore
from tests.support.ceph import Cluster, running_clusters
from tests.support.http import serve_directory
from tests.support.images import MiB, convert, make_sparse_raw, sha512_of
from tests.support.settings import make_settings
from worker.cli.presenter import image_fields
from worker.config.settings import Settings
from worker.tasks.embedded import copy_image, import_image
from worker.tasks.services import Services

pytestmark = pytest.mark.ceph

STORES = ["central", "dcn0", "dcn1"]
VIRTUAL = 48 * MiB
EXTENTS = [(0, MiB), (7 * MiB + 4096, 3 * MiB), (30 * MiB, 2 * MiB), (VIRTUAL - MiB, MiB)]


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    with running_clusters(3, tmp_path_factory.mktemp("ceph")) as started:
        yield dict(zip(STORES, started, strict=True))


@pytest.fixture(params=[1], ids=["serial"])
def width(request: pytest.FixtureRequest) -> int:
    """``[import] max_parallel_stores`` (tests parametrize it indirectly)."""
    return int(request.param)


@pytest.fixture
def settings(tmp_path: Path, clusters: dict[str, Cluster], width: int) -> Settings:
    stores: dict[str, Any] = {"default": "central"}
    for name, cluster in clusters.items():
        stores[name] = {
            "type": "rbd",
            "conf": cluster.conf,
            "chunk_size": 4 * MiB,
            "connect_timeout": 5,
            "operation_timeout": 4,
        }
    return make_settings(
        tmp_path, store_section=stores, **{"import": {"max_parallel_stores": width}}
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, Path]:
    """A qcow2 in a served directory, and the raw qemu-img makes of it."""
    directory = tmp_path / "www"
    directory.mkdir()
    raw = tmp_path / "source.raw"
    make_sparse_raw(raw, VIRTUAL, EXTENTS)
    qcow2 = convert(raw, directory / "disk.qcow2", "raw", "qcow2")
    return qcow2, convert(qcow2, tmp_path / "expected.raw", "qcow2", "raw")


async def _sha512_at(services: Services, store: str, url: str) -> str:
    reader = await services.stores[store].open(url)
    digest = hashlib.sha512()
    for segment in reader.segments(4 * MiB):
        digest.update(segment.data if segment.data is not None else bytes(segment.length))
    return digest.hexdigest()


@pytest.mark.parametrize("width", [1, 3], ids=["serial", "parallel"], indirect=True)
async def test_web_download_into_three_clusters_reads_back_exactly(
    services: Services, clusters: dict[str, Cluster], served: tuple[Path, Path]
) -> None:
    qcow2, expected = served
    async with serve_directory(qcow2.parent) as base:
        result = await import_image(
            services, uri=f"{base}/disk.qcow2", disk_format="qcow2", stores=STORES
        )
    image = result.image
    assert result.outcome.status == "success", result.outcome.message
    assert image.status == "active" and sorted(image.stores) == STORES
    assert image.os_hash_value == sha512_of(expected)
    for location in image.locations:
        parsed = RbdLocation.parse(location.url)
        assert parsed.fsid == clusters[location.store].fsid
        assert (parsed.pool, parsed.image, parsed.snapshot) == ("images", image.id, "snap")
        assert await _sha512_at(services, location.store, location.url) == image.os_hash_value
    shown = image_fields(image)
    assert sorted(shown["stores"].split(",")) == STORES
    assert len({RbdLocation.parse(url).fsid for url in _urls(shown)}) == 3


async def _connect_all(services: Services) -> None:
    """Connect to every cluster first, so a frozen OSD is met by a write, not a connect."""
    for store in services.stores.values():
        assert isinstance(store, RbdStore)
        await store.connect()


def _urls(fields: dict[str, Any]) -> list[str]:
    locations = fields["locations"]
    return [item["url"] if isinstance(item, dict) else str(item) for item in locations]


@pytest.mark.parametrize("width", [1, 3], ids=["serial", "parallel"], indirect=True)
async def test_copy_image_from_central_to_the_edges(
    services: Services, clusters: dict[str, Cluster], served: tuple[Path, Path]
) -> None:
    qcow2, _ = served
    async with serve_directory(qcow2.parent) as base:
        first = await import_image(
            services, uri=f"{base}/disk.qcow2", disk_format="qcow2", stores=["central"]
        )
    assert first.image.stores == ["central"], first.outcome.message
    copied = await copy_image(services, first.image.id, stores=["dcn0", "dcn1"])
    assert copied.outcome.status == "success", copied.outcome.message
    assert copied.image.status == "active"
    assert sorted(copied.image.stores) == STORES
    for location in copied.image.locations:
        assert await _sha512_at(services, location.store, location.url) == (
            first.image.os_hash_value
        )
    assert first.image.id in clusters["dcn1"].images()


@pytest.mark.parametrize("width", [1, 3], ids=["serial", "parallel"], indirect=True)
@pytest.mark.parametrize("allow_failure", [True, False], ids=["allow-failure", "must-succeed"])
async def test_dead_edge_site(
    services: Services,
    clusters: dict[str, Cluster],
    served: tuple[Path, Path],
    allow_failure: bool,
) -> None:
    qcow2, _ = served
    async with serve_directory(qcow2.parent) as base:
        await _connect_all(services)
        with clusters["dcn0"].osd_paused():
            result = await import_image(
                services,
                uri=f"{base}/disk.qcow2",
                disk_format="qcow2",
                stores=STORES,
                allow_failure=allow_failure,
            )
    image = result.image
    assert image.store_list(FAILED_IMPORT) == ["dcn0"]
    assert image.store_list(IMPORTING_TO_STORES) == []
    assert "dcn0" in result.task.message or "dcn0" in result.outcome.message
    assert "timeout" in (result.outcome.message + result.task.message).lower()
    if allow_failure:
        assert result.outcome.status == "success", result.outcome.message
        assert image.status == "active" and sorted(image.stores) == ["central", "dcn1"]
        assert image.id not in clusters["dcn0"].images()
    else:
        assert result.outcome.status == "failure"
        assert image.status == "failed" and image.locations == ()
        for cluster in clusters.values():
            assert image.id not in cluster.images()
