"""The guide's procedures, run with the real ``glance`` and ``openstack`` clients from PyPI.

`imgworker api` and two `imgworker run` workers on PostgreSQL and RabbitMQ, three file stores
(central, dcn0, dcn1), a web server for web-download. Every command is the guide's (chapters
1.2 and 2, appendix A) as printed, with the ids and URLs of this test; the one deviation:
2.2.2-2.2.4 print `image-create-via-import ... --import-method web-download` without
`--disk-format`, which the real client itself refuses ("Must provide --disk-format when
using --uri"), so these commands add `--disk-format qcow2`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.clients import Clients, properties, table, unauthenticated, web_download
from tests.support.images import make_sample_qcow2, qemu_img, sha512_of
from tests.support.services import require_tcp
from tests.support.stores import immutable
from tests.support.web_source import web_source
from tests.support.workers import Topology, delete_topology, running_workers, write_config

MiB = 1024 * 1024
STORES = ("central", "dcn0", "dcn1")


@dataclass
class Cloud:
    """What every test of this module shares."""

    root: Path
    api: ApiProcess
    source: str
    clients: Clients
    #: sha512 of the sample qcow2 converted to raw (what the stores must hold).
    raw_sha512: str

    def store_dir(self, name: str) -> Path:
        """The directory of a file store."""
        return self.root / "stores" / name

    def image(self, image_id: str) -> dict[str, Any]:
        """The image as the API returns it (JSON)."""
        return self.api.image(image_id)

    def web_download(self, name: str, *options: str, path: str = "cirros.qcow2") -> str:
        """The guide's web-download import of the sample; the new image's id."""
        return web_download(self.clients, name, f"{self.source}/{path}", *options)

    def holds(self, store: str, image_id: str) -> bool:
        """Whether a file store holds the image's data."""
        return (self.store_dir(store) / image_id).exists()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("cloud")
    www = root / "www"
    www.mkdir()
    sample = make_sample_qcow2(www / "cirros.qcow2", 64 * MiB, 12 * MiB)
    converted = root / "cirros.raw"
    qemu_img("convert", "-f", "qcow2", "-O", "raw", str(sample), str(converted))
    topology = Topology()
    with fresh_postgres() as database:
        config = write_config(root, database, topology, stores=STORES, concurrency=2)
        with config.open("a") as extra:
            extra.write('\n[api]\nshow_locations = "everyone"\n')
        environment = {
            "IMGWORKER_WORKER__SWEEP_SECONDS": "1",
            "IMGWORKER_WORKER__DELETE_RETRY_SECONDS": "2",
        }
        try:
            with (
                web_source(www, slow_bytes_per_second=2 * MiB) as source,
                running_api(config, root) as api,
                running_workers(config, root, 2, env=environment),
            ):
                clients = unauthenticated(api.url, root / "home")
                yield Cloud(root, api, source, clients, sha512_of(converted))
        finally:
            asyncio.run(delete_topology(topology))


def test_import_info_and_stores_info(cloud: Cloud) -> None:
    info = cloud.clients.glance("import-info").ok()
    flat = "".join(info.stdout.split()).replace("|", "")
    assert '"value":["web-download","glance-direct","copy-image"]' in flat
    stores = cloud.clients.glance("stores-info").ok()
    flat = "".join(stores.stdout.split()).replace("|", "")
    assert '[{"id":"central","default":"true"},{"id":"dcn0"},{"id":"dcn1"}]' in flat


def test_web_download_into_the_default_store(cloud: Cloud) -> None:
    """1.2.4.1: no store named: the central (default) store."""
    image_id = cloud.web_download("cirros-default")
    cloud.api.settled(image_id)
    shown = properties(cloud.clients.glance("image-show", image_id).ok().stdout)
    assert (shown["status"], shown["stores"]) == ("active", "central")
    assert (shown["disk_format"], shown["container_format"]) == ("raw", "bare")
    assert shown["os_hash_value"] == cloud.raw_sha512
    assert cloud.holds("central", image_id) and not cloud.holds("dcn0", image_id)


def test_allow_failure_with_a_broken_store(cloud: Cloud) -> None:
    """2.2.2: --allow-failure defaults to true: active in the healthy stores, dcn0 failed."""
    with immutable(cloud.store_dir("dcn0")):
        image_id = cloud.web_download("cirros-allow", "--stores", "central,dcn0,dcn1")
        cloud.api.settled(image_id)
    shown = properties(cloud.clients.glance("image-show", image_id).ok().stdout)
    assert (shown["status"], shown["stores"]) == ("active", "central,dcn1")
    assert shown["os_glance_failed_import"] == "dcn0"
    assert shown["os_glance_importing_to_stores"] == ""


def test_no_failure_allowed_with_a_broken_store(cloud: Cloud) -> None:
    """2.2.3: --allow-failure false: imported into none of the stores."""
    with immutable(cloud.store_dir("dcn1")):
        image_id = cloud.web_download(
            "cirros-strict", "--stores", "central,dcn1", "--allow-failure", "false"
        )
        cloud.api.settled(image_id)
    shown = properties(cloud.clients.glance("image-show", image_id).ok().stdout)
    assert shown["status"] == "failed"
    assert "stores" not in shown
    assert shown["os_glance_failed_import"] == "dcn1"
    assert not cloud.holds("central", image_id) and not cloud.holds("dcn1", image_id)
    tasks = json.loads(_api_get(cloud, f"/v2/images/{image_id}/tasks"))["tasks"]
    assert "dcn1" in tasks[-1]["message"]


def test_one_store_and_all_stores(cloud: Cloud) -> None:
    """2.2.4 (--store) and --all-stores true with --allow-failure false."""
    one = cloud.web_download("cirros-one", "--store", "dcn1")
    every = cloud.web_download("cirros-every", "--all-stores", "true", "--allow-failure", "false")
    assert cloud.api.settled(one)["stores"] == "dcn1"
    assert cloud.api.settled(every)["stores"] == "central,dcn0,dcn1"


def test_glance_direct_with_a_file_and_a_byte_exact_download(cloud: Cloud, tmp_path: Path) -> None:
    """1.2.4.2: image-create-via-import --file (chunked stage upload), then image-download."""
    created = cloud.clients.glance(
        "image-create-via-import",
        "--container-format", "bare",
        "--disk-format", "qcow2",
        "--name", "cirros-direct",
        "--file", str(cloud.root / "www" / "cirros.qcow2"),
    ).ok()  # fmt: skip
    image_id = properties(created.stdout)["id"]
    image = cloud.api.settled(image_id)
    assert (image["status"], image["stores"]) == ("active", "central")
    target = tmp_path / "downloaded.raw"
    cloud.clients.glance("image-download", image_id, "--file", str(target)).ok()
    assert sha512_of(target) == cloud.raw_sha512 == image["os_hash_value"]
    assert hashlib.md5(target.read_bytes()).hexdigest() == image["checksum"]


def test_watching_an_import_the_lists_move_as_the_guide_shows(cloud: Cloud) -> None:
    """2.2.5: os_glance_importing_to_stores shrinks store by store, failures join the other."""
    with immutable(cloud.store_dir("dcn0")):
        image_id = cloud.web_download(
            "cirros-watched", "--stores", "central,dcn0,dcn1", path="slow/cirros.qcow2"
        )
        seen = _watch(cloud, image_id)
        shown_while_importing = properties(cloud.clients.glance("image-show", image_id).ok().stdout)
        cloud.api.settled(image_id)
    assert shown_while_importing["status"] in ("importing", "active")
    assert seen[0] == ("importing", "central,dcn0,dcn1", "")
    assert seen[-1] == ("active", "", "dcn0")
    for before, after in itertools.pairwise(seen):
        # the importing list only shrinks and keeps its order; the failed one only grows
        assert _shrinks(before[1], after[1]) and _grows(before[2], after[2]), seen
    # The first store written activates the image in the same save that takes it off the
    # list (as Glance saves them): no reader sees a store done while the image is importing.
    # That the image goes active before the last store is pinned by test_announcements.
    assert all(state == seen[0] for state in seen if state[0] == "importing"), seen


def _watch(cloud: Cloud, image_id: str) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        image = cloud.image(image_id)
        state = (
            image["status"],
            image.get("os_glance_importing_to_stores", ""),
            image.get("os_glance_failed_import", ""),
        )
        if image["status"] != "queued" and (not seen or seen[-1] != state):
            seen.append(state)
        if image["status"] in ("active", "failed") and "os_glance_import_task" not in image:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"import did not end: {seen}")


def _shrinks(before: str, after: str) -> bool:
    old, new = [s for s in before.split(",") if s], [s for s in after.split(",") if s]
    return old[len(old) - len(new) :] == new


def _grows(before: str, after: str) -> bool:
    old, new = [s for s in before.split(",") if s], [s for s in after.split(",") if s]
    return new[: len(old)] == old


def test_copy_image_to_named_stores_and_to_all(cloud: Cloud) -> None:
    """2.3.2 then 2.3.1, and the guide's warning about two copies in quick succession."""
    image_id = cloud.web_download("cirros-copied", "--stores", "central")
    cloud.api.settled(image_id)
    cloud.clients.glance(
        "image-import", image_id, "--stores", "dcn1", "--import-method", "copy-image"
    ).ok()
    second = cloud.clients.glance(
        "image-import", image_id, "--stores", "dcn1", "--import-method", "copy-image"
    )
    assert second.returncode != 0 and "409 Conflict" in second.stderr
    assert cloud.api.settled(image_id)["stores"] == "central,dcn1"
    cloud.clients.glance(
        "image-import", image_id, "--all-stores", "true", "--import-method", "copy-image"
    ).ok()
    assert cloud.api.settled(image_id)["stores"] == "central,dcn1,dcn0"
    listed = table(cloud.clients.glance("image-list", "--include-stores").ok().stdout)
    assert {"ID": image_id, "Name": "cirros-copied", "Stores": "central,dcn1,dcn0"} in listed
    for store in STORES:
        assert sha512_of(cloud.store_dir(store) / image_id) == cloud.raw_sha512


def test_stores_delete_then_image_delete_remove_the_data(cloud: Cloud) -> None:
    """2.4: stores-delete removes one copy; image-delete removes the image from every site."""
    image_id = cloud.web_download("cirros-deleted", "--all-stores", "true")
    cloud.api.settled(image_id)
    cloud.clients.glance("stores-delete", "--store", "dcn0", image_id).ok()
    assert cloud.image(image_id)["stores"] == "central,dcn1"
    _until(lambda: not cloud.holds("dcn0", image_id), "dcn0's copy removed")
    cloud.clients.glance("image-delete", image_id).ok()
    missing = cloud.clients.glance("image-show", image_id)
    assert missing.returncode != 0 and "404" in missing.stderr
    _until(lambda: not any(cloud.holds(s, image_id) for s in STORES), "every copy removed")


def test_properties_hidden_images_and_locations(cloud: Cloud) -> None:
    """Appendix A's --property, 1.2.6/1.2.7 hidden images, 2.5's locations."""
    image_id = cloud.web_download("cirros-props", "--stores", "central,dcn1")
    cloud.api.settled(image_id)
    updated = cloud.clients.glance("image-update", image_id, "--property", "architecture=x86_64")
    assert properties(updated.ok().stdout)["architecture"] == "x86_64"
    cloud.clients.glance("image-update", image_id, "--hidden", "true").ok()
    default_list = table(cloud.clients.glance("image-list").ok().stdout)
    hidden_list = table(cloud.clients.glance("image-list", "--hidden", "true").ok().stdout)
    assert image_id not in {row["ID"] for row in default_list}
    assert image_id in {row["ID"] for row in hidden_list}
    fresh = cloud.clients.glance(
        "image-create", "--name", "born-hidden", "--hidden", "true",
        "--disk-format", "raw", "--container-format", "bare",
    ).ok()  # fmt: skip
    assert properties(fresh.stdout)["os_hidden"] == "True"
    cloud.clients.glance("image-update", image_id, "--hidden", "false").ok()

    shown = properties(
        cloud.clients.openstack("image", "show", image_id, "-c", "properties").ok().stdout
    )
    flat = shown["properties"]
    assert "architecture='x86_64'" in flat
    for store in ("central", "dcn1"):
        url = (cloud.store_dir(store) / image_id).as_uri()
        assert f"'url': '{url}', 'metadata': {{'store': '{store}'}}" in flat
    listed = table(cloud.clients.openstack("image", "list").ok().stdout)
    assert {"ID": image_id, "Name": "cirros-props", "Status": "active"} in listed


def _api_get(cloud: Cloud, path: str) -> str:
    with urllib.request.urlopen(f"{cloud.api.url}{path}", timeout=10) as reply:
        return str(reply.read().decode())


def _until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.2)


def test_classic_upload_with_image_create_file(cloud: Cloud) -> None:
    """``glance image-create --file`` (1.2.2's CLI form) uploads with PUT /file: it runs as a
    glance-direct import into the store the client names (``--store``), or the default."""
    created = cloud.clients.glance(
        "image-create",
        "--name", "cirros-uploaded",
        "--disk-format", "qcow2",
        "--container-format", "bare",
        "--file", str(cloud.root / "www" / "cirros.qcow2"),
        "--store", "dcn0",
    ).ok()  # fmt: skip
    shown = properties(created.stdout)
    assert (shown["status"], shown["stores"]) == ("active", "dcn0")
    assert shown["os_hash_value"] == cloud.raw_sha512
