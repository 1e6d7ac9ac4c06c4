"""Quotas, members and deactivation in a real cloud: a real Keystone (projects, users, roles,
registered and project limits created through its API), two ``imgworker api`` replicas on one
PostgreSQL reading the limits with oslo.limit, and the real ``glance`` and ``openstack``
clients.

Each test makes its own projects, so their limits and usage are theirs alone. No worker runs
unless a test starts one: an admitted import stays admitted, holding its place in
``image_count_uploading``, until a worker ends it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.clients import Clients, Result, properties, refused, table
from tests.support.images import MiB, make_sparse_raw
from tests.support.keystone import REGION, Cloud, Keystone, Person, _person, send_json
from tests.support.services import require_tcp
from tests.support.web_source import web_source
from tests.support.workers import Topology, delete_topology, running_workers, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

#: Registered limits of the image service: what a project without limits of its own gets.
REGISTERED = {
    "image_count_total": 100,
    "image_size_total": 10_000,
    "image_stage_total": 10_000,
    "image_count_uploading": 10,
}


@dataclass
class Stack:
    """What the tests of this module share."""

    root: Path
    apis: tuple[ApiProcess, ApiProcess]
    config: Path
    source: str
    cloud: Cloud
    service_id: str

    @property
    def keystone(self) -> Keystone:
        return self.cloud.keystone

    def glance(self, person: Person, replica: int = 0) -> Clients:
        """``glance`` with a token of ``person`` against one replica (no password login in
        every command: seconds each, here)."""
        token = ["--os-auth-token", person.token(), "--os-image-url", self.apis[replica].url]
        return Clients(self.root / f"home-{person.name}", token, [])

    def clients(self, person: Person) -> Clients:
        """Both clients as ``person`` runs them after ``source overcloudrc`` (the catalog)."""
        return Clients(self.root / f"home-{person.name}", [], [], person.openrc())

    def project(self, **limits: int) -> Person:
        """A new project with ``limits`` of its own (project limits in Keystone), and a
        member of it."""
        name = f"quota-{uuid.uuid4().hex[:8]}"
        project_id = self.keystone.create_project(name)
        if limits:
            entries = [
                {
                    "service_id": self.service_id,
                    "region_id": REGION,
                    "project_id": project_id,
                    "resource_name": resource,
                    "resource_limit": limit,
                }
                for resource, limit in limits.items()
            ]
            self.keystone.admin("POST", "/limits", {"limits": entries})
        return _person(self.keystone, f"user-{name}", name, project_id, ["member", "reader"])

    def call(
        self, person: Person, method: str, path: str, body: Any = None, replica: int = 0,
        token: str | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        """One API call as ``person``: status and JSON body (or text)."""
        headers = {
            "X-Auth-Token": token or person.token(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        status, _headers, raw = send_json(method, f"{self.apis[replica].url}{path}", headers, body)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()

    def settled(self, person: Person, image_id: str, token: str) -> dict[str, Any]:
        """The image once no import holds it any more."""
        deadline = time.monotonic() + 120
        while True:
            image = self.call(person, "GET", f"/v2/images/{image_id}", token=token)[1]
            if "os_glance_import_task" not in image:
                return dict(image)
            assert time.monotonic() < deadline, f"image did not settle: {image}"
            time.sleep(0.2)


def _registered_limits(keystone: Keystone, service_id: str) -> None:
    """The image service's registered limits (once per Keystone: other modules share it)."""
    found = keystone.admin("GET", f"/registered_limits?service_id={service_id}").body
    missing = REGISTERED.keys() - {r["resource_name"] for r in found["registered_limits"]}
    if missing:
        entries = [
            {"service_id": service_id, "region_id": REGION, "resource_name": r,
             "default_limit": REGISTERED[r]}
            for r in sorted(missing)
        ]  # fmt: skip
        keystone.admin("POST", "/registered_limits", {"registered_limits": entries})


def _system_reader(keystone: Keystone, user_id: str) -> None:
    """What Glance's docs ask of its service user: the system ``reader`` role."""
    role = keystone.admin("GET", "/roles?name=reader").body["roles"][0]["id"]
    keystone.admin("PUT", f"/system/users/{user_id}/roles/{role}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, keystone_cloud: Cloud) -> Iterator[Stack]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("quota-stack")
    keystone = keystone_cloud.keystone
    _system_reader(keystone, keystone_cloud.service.user_id)
    keystone.register_image_api("http://127.0.0.1:9/")  # the service, before the APIs start
    service_id = str(keystone.admin("GET", "/services?type=image").body["services"][0]["id"])
    _registered_limits(keystone, service_id)
    www = root / "www"
    www.mkdir()
    make_sparse_raw(www / "disk.raw", MiB, [(0, MiB // 2)])
    topology = Topology()
    environment = {
        **keystone_cloud.api_environment(),
        "IMGWORKER_QUOTAS__USE_KEYSTONE_LIMITS": "true",
        "IMGWORKER_QUOTAS__CACHE_SECONDS": "1",
    }
    try:
        with fresh_postgres() as database, web_source(www) as source:
            config = write_config(root, database, topology, stores=("central",))
            with (
                running_api(config, root, "api-a", **environment) as first,
                running_api(config, root, "api-b", **environment) as second,
            ):
                keystone.register_image_api(first.url)
                yield Stack(root, (first, second), config, source, keystone_cloud, service_id)
    finally:
        asyncio.run(delete_topology(topology))


def _create(clients: Clients, name: str, *options: str) -> Result:
    return clients.glance(
        "image-create", "--name", name, "--disk-format", "raw", "--container-format", "bare",
        *options,
    )  # fmt: skip


def test_each_resource_is_refused_past_its_limit_with_glances_answer(stack: Stack) -> None:
    counted = stack.project(image_count_total=2)
    glance = stack.glance(counted)
    _create(glance, "one").ok()
    _create(stack.glance(counted, replica=1), "two").ok()
    refused(
        _create(glance, "three"), 413,
        "This generally means that rate limiting or a quota threshold was breached",
        f"Project {counted.project_id} is over a limit for [Resource image_count_total is "
        "over limit of 2 due to current usage 2 and delta 1]",
    )  # fmt: skip

    sized = stack.project(image_stage_total=1, image_size_total=0)
    glance = stack.glance(sized)
    (stack.root / "two.raw").write_bytes(b"\1" * (2 * MiB))
    (stack.root / "one.raw").write_bytes(b"\1" * MiB)
    staged = properties(_create(glance, "staged").ok().stdout)["id"]
    refused(
        glance.glance("image-stage", "--file", str(stack.root / "two.raw"), staged), 413,
        "image_stage_total is over limit of 1 due to current usage 0 and delta 2",
    )  # fmt: skip
    glance.glance("image-stage", "--file", str(stack.root / "one.raw"), staged).ok()
    refused(
        glance.glance("image-import", "--import-method", "glance-direct", staged), 413,
        "image_size_total is over limit of 0 due to current usage 0 and delta 1",
    )  # fmt: skip

    status, usage = stack.call(sized, "GET", "/v2/info/usage", replica=1)
    assert status == 200
    assert usage["usage"]["image_stage_total"] == {"limit": 1, "usage": 1}
    assert usage["usage"]["image_count_total"] == {"limit": 100, "usage": 1}
    assert "image_stage_total" in glance.glance("usage").ok().stdout


def test_twenty_imports_on_two_replicas_admit_three_until_they_end(stack: Stack) -> None:
    project = stack.project(image_count_uploading=3)
    token = project.token()
    images = []
    for index in range(20):
        status, made = stack.call(
            project, "POST", "/v2/images",
            {"name": f"i{index}", "disk_format": "raw", "container_format": "bare"},
            replica=index % 2, token=token,
        )  # fmt: skip
        assert status == 201, made
        images.append(made["id"])
    body = {"method": {"name": "web-download", "uri": f"{stack.source}/missing.raw"}}

    def start(index: int) -> tuple[int, Any]:
        path = f"/v2/images/{images[index]}/import"
        return stack.call(project, "POST", path, body, replica=index % 2, token=token)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(start, range(20)))

    assert sorted(status for status, _ in answers) == [202] * 3 + [413] * 17, answers
    for status, answer in answers:
        if status == 413:
            assert (
                "image_count_uploading is over limit of 3 due to current usage 3"
                in (answer["message"])
            )
    admitted = [images[i] for i, (status, _) in enumerate(answers) if status == 202]
    for index, (status, _) in enumerate(answers):
        tasks = stack.call(project, "GET", f"/v2/images/{images[index]}/tasks", token=token)[1]
        assert len(tasks["tasks"]) == (1 if status == 202 else 0)  # refused: nothing recorded
    for replica in (0, 1):
        usage = stack.call(project, "GET", "/v2/info/usage", replica=replica, token=token)[1]
        assert usage["usage"]["image_count_uploading"] == {"limit": 3, "usage": 3}

    with running_workers(stack.config, stack.root, 1):  # the source answers 404: all fail
        for image_id in admitted:
            assert stack.settled(project, image_id, token)["status"] == "failed"
    usage = stack.call(project, "GET", "/v2/info/usage", token=token)[1]["usage"]
    assert usage["image_count_uploading"]["usage"] == 0
    assert usage["image_count_total"]["usage"] == 20
    assert stack.call(project, "POST", f"/v2/images/{images[5]}/import", body, token=token)[0] == (
        202
    )
    for image_id in images[:10]:
        assert stack.call(project, "DELETE", f"/v2/images/{image_id}", token=token)[0] == 204
    usage = stack.call(project, "GET", "/v2/info/usage", replica=1, token=token)[1]["usage"]
    assert usage["image_count_total"]["usage"] == 10
    assert usage["image_count_uploading"]["usage"] == 0  # images[5], admitted, was deleted


def test_sharing_accepted_rejected_pending_as_glance_shows_it(stack: Stack) -> None:
    alice, bob = stack.cloud.alice, stack.cloud.bob
    as_alice, as_bob = stack.glance(alice), stack.glance(bob, replica=1)
    image = properties(_create(as_alice, "shared", "--visibility", "shared").ok().stdout)["id"]

    stack.clients(alice).openstack("image", "add", "project", image, bob.project_id).ok()
    members = table(as_alice.glance("member-list", "--image-id", image).ok().stdout)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(bob.project_id, "pending")]
    assert image not in as_bob.glance("image-list").ok().stdout
    assert properties(as_bob.glance("image-show", image).ok().stdout)["id"] == image
    refused(as_alice.glance("member-update", image, bob.project_id, "accepted"), 403)

    stack.clients(bob).openstack("image", "set", "--accept", image).ok()
    assert image in as_bob.glance("image-list").ok().stdout
    mine = table(as_bob.glance("member-list", "--image-id", image).ok().stdout)
    assert [(m["Member ID"], m["Status"]) for m in mine] == [(bob.project_id, "accepted")]

    as_bob.glance("member-update", image, bob.project_id, "rejected").ok()
    assert image not in as_bob.glance("image-list").ok().stdout
    assert image in as_bob.glance("image-list", "--member-status", "rejected").ok().stdout

    as_alice.glance("member-delete", image, bob.project_id).ok()
    refused(as_bob.glance("image-show", image), 404)
    assert table(as_alice.glance("member-list", "--image-id", image).ok().stdout) == []


def test_a_deactivated_image_is_not_downloaded_but_by_admins(stack: Stack) -> None:
    alice, admin = stack.cloud.alice, stack.cloud.admin
    as_alice, as_admin = stack.glance(alice), stack.glance(admin, replica=1)
    data = stack.root / "www" / "disk.raw"
    with running_workers(stack.config, stack.root, 1):
        made = _create(as_alice, "deactivated", "--file", str(data)).ok()
    image = properties(made.stdout)["id"]
    queued = properties(_create(as_alice, "queued").ok().stdout)["id"]
    # openstacksdk drops the answer of an image action: glance shows Glance's refusal.
    refused(
        as_alice.glance("image-deactivate", queued), 403,
        "Not allowed to deactivate image in status",
    )  # fmt: skip

    stack.clients(alice).openstack("image", "set", "--deactivate", image).ok()
    assert properties(as_alice.glance("image-show", image).ok().stdout)["status"] == "deactivated"
    out = stack.root / "out.raw"
    refused(
        as_alice.glance("image-download", "--file", str(out), image), 403,
        "The requested image has been deactivated. Image data download is forbidden.",
    )  # fmt: skip
    as_admin.glance("image-download", "--file", str(out), image).ok()
    assert out.read_bytes() == data.read_bytes()

    stack.clients(alice).openstack("image", "set", "--activate", image).ok()
    as_alice.glance("image-download", "--file", str(out), image).ok()
    as_alice.glance("image-reactivate", image).ok()  # already active: nothing changes
    assert out.read_bytes() == data.read_bytes()
