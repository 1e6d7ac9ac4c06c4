"""``imgworker api`` in a real OpenStack cloud: a real Keystone from PyPI, the real clients.

Keystone (deploy/dev/keystone-up.sh, one per session) has projects A and B: alice (member of
A), rita (reader of A), bob (member of B), the cloud admin, and the API's service user.
``imgworker api`` validates every token with it and is the catalog's ``image`` service, so the
clients find it as in any cloud: ``source overcloudrc`` (the OS_* variables), no
``--os-image-url``, no fake token. One worker, three file stores, PostgreSQL, RabbitMQ, a web
server for web-download, and a Barbican-shaped server that asks Keystone who its caller is.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flows.records import IMPORT_LOCK
from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.clients import Clients, properties
from tests.support.images import MiB, make_sparse_raw
from tests.support.keystone import Cloud, Keystone, Person, send_json
from tests.support.services import require_tcp
from tests.support.signing import make_certificate, signature_properties
from tests.support.web_source import web_source
from tests.support.workers import (
    Topology,
    Worker,
    delete_topology,
    running_workers,
    write_config,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

STORES = ("central", "dcn0", "dcn1")
CERT_UUID = "6e1e8a39-9c5f-4d35-8f43-5b1e8c1f7a01"
#: Seconds the API trusts a validated token (small, so revocation is seen quickly here).
CACHE_SECONDS = 2
JSON = "application/json"
PATCH = "application/openstack-images-v2.1-json-patch"


@dataclass
class Reply:
    """An answer of the image API."""

    status: int
    headers: Message
    text: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)


def call(
    api: ApiProcess,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    content_type: str = "application/json",
) -> Reply:
    """One request to the image API with ``X-Auth-Token: token``."""
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if token is not None:
        headers["X-Auth-Token"] = token
    status, answered, raw = send_json(method, f"{api.url}{path}", headers, body)
    return Reply(status, answered, raw.decode())


@dataclass
class FakeBarbican:
    """Barbican's payload call: it asks Keystone who the caller is, as Barbican does, and
    serves the certificate to project A's users only."""

    keystone: Keystone
    owner_project: str
    certificate: bytes
    seen: list[str] = field(default_factory=list)

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        barbican = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.headers.get("X-Auth-Token", "")
                barbican.seen.append(token)
                status, body = barbican.answer(self.path, token)
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def answer(self, path: str, token: str) -> tuple[int, bytes]:
        checked = self.keystone.call(
            "GET", "/auth/tokens", token=self.keystone.admin_token(), subject=token
        )
        if checked.status != 200:
            return 401, b"Authentication required"
        if checked.body["token"].get("project", {}).get("id") != self.owner_project:
            return 403, b"Forbidden"
        if path != f"/v1/secrets/{CERT_UUID}/payload":
            return 404, b"Not Found"
        return 200, self.certificate


@dataclass
class Stack:
    """What the tests of this module share."""

    root: Path
    api: ApiProcess
    config: Path
    source: str
    cloud: Cloud
    barbican: FakeBarbican
    workers: list[Worker]

    def clients(self, person: Person) -> Clients:
        """``glance`` and ``openstack`` as ``person`` runs them after ``source overcloudrc``."""
        return Clients(
            home=self.root / f"home-{person.name}",
            glance_args=[],
            openstack_args=[],
            environment=person.openrc(),
        )

    def create(self, person: Person, token: str | None = None, **body: Any) -> dict[str, Any]:
        """``POST /v2/images`` as ``person``; the new image."""
        body = {"disk_format": "raw", "container_format": "bare", **body}
        reply = call(self.api, "POST", "/v2/images", token or person.token(), body)
        assert reply.status == 201, reply.text
        return dict(reply.json())

    def web_download(self, image_id: str, token: str, **extra: Any) -> Reply:
        """``POST /v2/images/{id}/import`` of ``disk.raw`` from the web source."""
        body = {"method": {"name": "web-download", "uri": f"{self.source}/disk.raw"}, **extra}
        return call(self.api, "POST", f"/v2/images/{image_id}/import", token, body)

    def wait_for(self, image_id: str, token: str, timeout: float = 120) -> dict[str, Any]:
        """The image once no import holds it and it is active or failed."""
        deadline = time.monotonic() + timeout
        while True:
            image = call(self.api, "GET", f"/v2/images/{image_id}", token).json()
            if image["status"] in ("active", "failed") and IMPORT_LOCK not in image:
                return dict(image)
            assert time.monotonic() < deadline, f"image stuck: {image}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, keystone_cloud: Cloud) -> Iterator[Stack]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("keystone-stack")
    www = root / "www"
    www.mkdir()
    make_sparse_raw(www / "disk.raw", 4 * MiB, [(0, MiB)])
    make_sparse_raw(www / "signed.raw", 2 * MiB, [(MiB, MiB)], seed=7)
    signer = make_certificate("project A signer", "rsa")
    barbican = FakeBarbican(keystone_cloud.keystone, keystone_cloud.alice.project_id, signer.der())
    (root / "signed.json").write_text(
        json.dumps(signature_properties(www / "signed.raw", signer, CERT_UUID))
    )
    topology = Topology()
    server = ThreadingHTTPServer(("127.0.0.1", 0), barbican.handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="barbican", daemon=True).start()
    try:
        with fresh_postgres() as database:
            config = write_config(root, database, topology, stores=STORES)
            with config.open("a") as extra:
                extra.write(
                    '\n[inject_metadata]\nproperties = { company = "acme" }\n'
                    'ignore_user_roles = ["admin"]\n'
                    f'\n[signature]\nkey_manager = "barbican"\n'
                    f'barbican_url = "http://127.0.0.1:{server.server_address[1]}"\n'
                )
            with (
                web_source(www) as source,
                running_api(config, root, **keystone_cloud.api_environment(CACHE_SECONDS)) as api,
                running_workers(config, root, 1) as workers,
            ):
                keystone_cloud.keystone.register_image_api(api.url)
                yield Stack(root, api, config, source, keystone_cloud, barbican, workers)
    finally:
        server.shutdown()
        server.server_close()
        asyncio.run(delete_topology(topology))


def test_the_guides_commands_run_as_cloud_users_through_the_catalog(stack: Stack) -> None:
    alice, admin = stack.cloud.alice, stack.cloud.admin
    uri = f"{stack.source}/disk.raw"
    guide = "image-create-via-import --disk-format raw --container-format bare --import-method"
    created = stack.clients(alice).glance(
        *guide.split(), "web-download", "--uri", uri, "--name", "cirros", "--stores", "central,dcn0"
    )
    image_id = properties(created.ok().stdout)["id"]
    token = alice.token()
    image = stack.wait_for(image_id, token)
    assert (image["status"], image["stores"]) == ("active", "central,dcn0")
    assert image["owner"] == alice.project_id
    assert image["company"] == "acme"  # a member is not exempt from inject_metadata

    stack.clients(alice).glance(
        "image-import", image_id, "--stores", "dcn1", "--import-method", "copy-image"
    ).ok()
    assert stack.wait_for(image_id, token)["stores"] == "central,dcn0,dcn1"
    shown = json.loads(
        stack.clients(alice).openstack("image", "show", image_id, "-f", "json").ok().stdout
    )
    assert (shown["name"], shown["owner"], shown["status"]) == (
        "cirros",
        alice.project_id,
        "active",
    )
    tasks = call(stack.api, "GET", f"/v2/images/{image_id}/tasks", token).json()["tasks"]
    assert [task["owner"] for task in tasks] == [alice.project_id] * 2

    by_admin = stack.clients(admin).glance(
        *guide.split(), "web-download", "--uri", uri, "--name", "admins"
    )
    admins = stack.wait_for(properties(by_admin.ok().stdout)["id"], admin.token())
    assert admins["status"] == "active" and "company" not in admins  # admin: exempt

    listed = stack.clients(alice).openstack("image", "list", "-f", "json").ok()
    names = [i["Name"] for i in json.loads(listed.stdout)]
    assert "cirros" in names and "admins" not in names
    stack.clients(alice).openstack("image", "delete", image_id).ok()
    assert call(stack.api, "GET", f"/v2/images/{image_id}", token).status == 404
    rita = stack.cloud.rita  # with the options instead of the variables this time
    as_rita = Clients(stack.root / "home-rita", rita.auth_args(), rita.auth_args())
    refused = as_rita.glance(
        "image-create", "--disk-format", "raw", "--container-format", "bare", "--name", "no"
    )
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    readable = as_rita.openstack("image", "list", "-f", "value", "-c", "Name").ok().stdout
    assert "admins" not in readable.split()  # the admin project's image is not shared with A


def test_projects_are_isolated_and_the_roles_are_glances(stack: Stack) -> None:
    alice, rita, bob, admin = (
        stack.cloud.alice,
        stack.cloud.rita,
        stack.cloud.bob,
        stack.cloud.admin,
    )
    a, r, b, root = alice.token(), rita.token(), bob.token(), admin.token()
    private = stack.create(alice, a, name="a-private", visibility="private")
    assert stack.web_download(private["id"], a).status == 202
    assert stack.wait_for(private["id"], a)["status"] == "active"
    path = f"/v2/images/{private['id']}"

    listed = call(stack.api, "GET", "/v2/images", b).json()["images"]
    assert private["id"] not in [image["id"] for image in listed]
    patch = [{"op": "replace", "path": "/name", "value": "stolen"}]
    copy = {"method": {"name": "copy-image"}, "stores": ["dcn1"]}
    for method, suffix, body, kind in (
        ("GET", "", None, JSON),
        ("PATCH", "", patch, PATCH),
        ("DELETE", "", None, JSON),
        ("POST", "/import", copy, JSON),
        ("POST", "/import", {"method": {"name": "web-download", "uri": "http://x/y"}}, JSON),
    ):
        reply = call(stack.api, method, f"{path}{suffix}", b, body, kind)
        assert reply.status == 404, f"bob {method} {suffix}: {reply.status} {reply.text}"

    assert call(stack.api, "GET", path, r).status == 200
    seen_by_rita = call(stack.api, "GET", "/v2/images", r).json()["images"]
    assert private["id"] in [image["id"] for image in seen_by_rita]
    assert call(stack.api, "POST", "/v2/images", r, {"name": "x"}).status == 403
    assert call(stack.api, "POST", f"{path}/import", r, copy).status == 403
    patched = call(stack.api, "PATCH", path, r, patch, PATCH)
    assert patched.status == 403
    assert call(stack.api, "DELETE", path, r).status == 403

    public = stack.create(admin, root, name="public", visibility="public")
    assert stack.web_download(public["id"], root).status == 202
    assert stack.wait_for(public["id"], root)["status"] == "active"
    theirs = f"/v2/images/{public['id']}"
    assert call(stack.api, "GET", theirs, b).status == 200
    assert call(stack.api, "POST", f"{theirs}/import", b, copy).status == 403
    assert call(stack.api, "DELETE", theirs, b).status == 403

    assert call(stack.api, "GET", path, root).status == 200
    assert call(stack.api, "POST", f"{path}/import", root, copy).status == 202
    assert stack.wait_for(private["id"], root)["stores"] == "central,dcn1"
    assert call(stack.api, "DELETE", path, root).status == 204


def test_missing_invalid_revoked_and_expired_tokens_are_refused(stack: Stack) -> None:
    keystone, alice = stack.cloud.keystone, stack.cloud.alice
    for token in (None, "gAAAAA-not-a-token"):
        reply = call(stack.api, "GET", "/v2/images", token)
        assert reply.status == 401, reply.text
        assert reply.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.url}"'

    token = alice.token()
    assert call(stack.api, "GET", "/v2/images", token).status == 200  # now in the cache
    keystone.revoke(token)
    time.sleep(CACHE_SECONDS)  # the bound: a revoked token is refused after it at the latest
    assert call(stack.api, "GET", "/v2/images", token).status == 401

    # A long cache does not keep a token past its expiry. (This API logs itself in with an
    # application credential of its service user, the other way [keystone] allows.)
    credential = stack.cloud.service.application_credential()
    environment = stack.cloud.api_environment(cache_seconds=300, application_credential=credential)
    with running_api(stack.config, stack.root, "api-long-cache", **environment) as api:
        short, expires = alice.expiring_token(seconds=6)
        assert call(api, "GET", "/v2/images", short).status == 200
        remaining = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
        time.sleep(max(0.0, remaining) + 0.5)
        assert call(api, "GET", "/v2/images", short).status == 401


def test_keystone_down_answers_503_creates_nothing_and_recovers(stack: Stack) -> None:
    keystone, alice = stack.cloud.keystone, stack.cloud.alice
    image = stack.create(alice, name="while-keystone-is-down")
    fresh = alice.token()  # never shown to the API yet: it must ask Keystone
    keystone.stop()
    try:
        assert call(stack.api, "GET", "/v2/images", fresh).status == 503
        refused = stack.web_download(image["id"], fresh)
        assert refused.status == 503, refused.text
        assert "try again" in refused.json()["message"]
    finally:
        keystone.start()
    shown = call(stack.api, "GET", f"/v2/images/{image['id']}", fresh)
    assert shown.status == 200, shown.text
    assert IMPORT_LOCK not in shown.json() and shown.json()["status"] == "queued"
    tasks = call(stack.api, "GET", f"/v2/images/{image['id']}/tasks", fresh).json()["tasks"]
    assert tasks == []
    assert stack.web_download(image["id"], fresh).status == 202
    assert stack.wait_for(image["id"], fresh)["status"] == "active"


def test_barbican_is_asked_with_the_users_token(stack: Stack) -> None:
    alice = stack.cloud.alice
    token = alice.token()
    signed_properties = json.loads((stack.root / "signed.json").read_text())
    signed = stack.create(alice, token, name="signed", **signed_properties)
    stack.barbican.seen.clear()
    body = {"method": {"name": "web-download", "uri": f"{stack.source}/signed.raw"}}
    reply = call(stack.api, "POST", f"/v2/images/{signed['id']}/import", token, body)
    assert reply.status == 202, reply.text
    assert stack.wait_for(signed["id"], token)["status"] == "active"
    assert stack.barbican.seen == [token]

    unsigned = stack.create(alice, token, name="unsigned")
    assert stack.web_download(unsigned["id"], token).status == 202
    assert stack.wait_for(unsigned["id"], token)["status"] == "active"
    assert stack.barbican.seen == [token]  # no certificate to read: Barbican never asked
    for log in (stack.api.output(), *(worker.output() for worker in stack.workers)):
        assert token not in log
