"""The Image API in process, on real databases and RabbitMQ: shapes, codes, rules, records.

The real clients drive it in test_api_clients.py; here every answer is checked exactly,
including the refusals, with identities set as an authenticating proxy sets them.
"""

from __future__ import annotations

import hashlib
import html
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from flows.records import IMPORT_LOCK
from flows.states import ImageStatus, LocationStatus, TaskStatus, TaskType
from tests.support.api import api_client, identity_headers
from tests.support.records import RecordWrites
from tests.support.services import require_tcp
from tests.support.settings import make_settings
from tests.support.workers import Topology, delete_topology
from worker.api.patch import PATCH_V21
from worker.api.state import ApiState
from worker.daemon.topology import declare

MiB = 1024 * 1024
A = identity_headers("project-a")
B = identity_headers("project-b")
READER = identity_headers("project-a", roles="reader")
ADMIN = identity_headers("project-admin", roles="admin,member,reader")
JSON = {"Content-Type": "application/json"}

Client = TestClient[Any, Any]


@pytest.fixture
async def api(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Client, ApiState, Topology]]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    topology = Topology()
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        broker={
            "exchange": topology.exchange,
            "queue": topology.queue,
            "dead_letter_exchange": topology.dead_exchange,
            "dead_letter_queue": topology.dead_queue,
        },
        api={"auth": "headers", "disk_formats": ["raw", "qcow2", "iso"], "max_json_bytes": 4096},
        safety={"allowed_schemes": ["http"], "image_size_cap": 4 * MiB},
    )
    try:
        async with api_client(settings) as (client, state):
            yield client, state, topology
    finally:
        await delete_topology(topology)


async def _create(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    response = await client.post("/v2/images", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def _error(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.headers["x-openstack-request-id"].startswith("req-")
    return html.unescape(await response.text())


async def _activate(state: ApiState, image_id: str, stores: tuple[str, ...], data: bytes) -> None:
    """Make the image active with its data in ``stores`` (as an import would leave it)."""
    writes = RecordWrites(state.records.engine)
    for name in stores:
        path = Path(state.settings.stores.backends[name].path) / image_id  # type: ignore[union-attr]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        await writes.add_location(image_id, path.as_uri(), name)
    from flows.records import DataFacts

    await writes.record_data(
        image_id,
        DataFacts(
            size=len(data),
            virtual_size=len(data),
            checksum=hashlib.md5(data).hexdigest(),
            os_hash_value=hashlib.sha512(data).hexdigest(),
        ),
    )
    await writes.set_status(image_id, ImageStatus.ACTIVE)


async def _published(state: ApiState) -> list[dict[str, Any]]:
    connection = await aio_pika.connect(state.settings.broker.url)
    async with connection:
        channel = await connection.channel()
        _exchange, queue, _dead = await declare(channel, state.settings.broker)
        bodies = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            bodies.append(json.loads(message.body))
        return bodies


async def test_discovery_and_schemas(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    root = await client.get("/")
    assert root.status == 300
    versions = (await root.json())["versions"]
    assert {"id": "v2.17", "status": "CURRENT"}.items() <= versions[0].items()
    assert versions[0]["links"][0]["href"].endswith("/v2/")
    schema = await (await client.get("/v2/schemas/image", headers=A)).json()
    assert "failed" in schema["properties"]["status"]["enum"]
    assert schema["properties"]["disk_format"]["enum"] == [None, "raw", "qcow2", "iso"]
    assert schema["additionalProperties"] == {"type": "string"}
    for name in ("images", "task", "tasks", "member", "members"):
        assert (await client.get(f"/v2/schemas/{name}", headers=A)).status == 200
    await _error(await client.get("/v2/schemas/nope", headers=A), 404)


async def test_identity_is_required_and_roles_apply(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    assert "verify that you are authorized" in await _error(await client.get("/v2/images"), 401)
    unconfirmed = {**A, "X-Identity-Status": "Invalid"}
    await _error(await client.get("/v2/images", headers=unconfirmed), 401)
    refused = await client.post("/v2/images", json={"name": "x"}, headers=READER)
    assert "not authorized to complete add_image action" in await _error(refused, 403)
    assert (await client.get("/v2/images", headers=READER)).status == 200


async def test_create_show_and_the_request_id(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    wanted = str(uuid.uuid4())
    response = await client.post(
        "/v2/images",
        json={
            "id": wanted,
            "name": "cirros",
            "disk_format": "qcow2",
            "container_format": "bare",
            "os_hidden": True,
            "tags": ["a", "b"],
            "architecture": "x86_64",
        },
        headers={**A, "x-openstack-request-id": "req-11111111-2222-3333-4444-555555555555"},
    )
    assert response.status == 201
    assert response.headers["Location"].endswith(f"/v2/images/{wanted}")
    assert response.headers["OpenStack-image-store-ids"] == "central,dcn0,dcn1"
    assert response.headers["x-openstack-request-id"] == "req-11111111-2222-3333-4444-555555555555"
    body = await response.json()
    assert (body["id"], body["status"], body["owner"], body["visibility"]) == (
        wanted,
        "queued",
        "project-a",
        "shared",
    )
    assert (body["os_hidden"], body["tags"], body["architecture"]) == (True, ["a", "b"], "x86_64")
    shown = await (await client.get(f"/v2/images/{wanted}", headers=A)).json()
    assert shown == body
    await _error(await client.post("/v2/images", json={"id": wanted}, headers=A), 409)


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{not json", JSON, 400, "Malformed JSON"),
        (b'"a string"', JSON, 400, "JSON object"),
        (b"[" * 100_000, JSON, 413, "larger than"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "not supported"),
        (json.dumps({"status": "active"}).encode(), JSON, 403, "read-only"),
        (json.dumps({"os_glance_import_task": "x"}).encode(), JSON, 403, "reserved"),
        (json.dumps({"architecture": 64}).encode(), JSON, 400, "string"),
        (json.dumps({"disk_format": "vmdk"}).encode(), JSON, 400, "allowed: raw, qcow2, iso"),
        (json.dumps({"container_format": "zip"}).encode(), JSON, 400, "container format"),
        (json.dumps({"id": "not-a-uuid"}).encode(), JSON, 400, "not a UUID"),
        (json.dumps({"visibility": "public"}).encode(), JSON, 403, "publicize"),
        (json.dumps({"name": "x" * 256}).encode(), JSON, 400, "longer than 255"),
        (json.dumps({"tags": "a"}).encode(), JSON, 400, "list of strings"),
        (json.dumps({"min_ram": "1"}).encode(), JSON, 400, "whole number"),
    ],
)
async def test_bad_creations_are_refused_and_nothing_is_recorded(
    api: tuple[Client, ApiState, Topology],
    body: bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    client, _state, _topology = api
    response = await client.post("/v2/images", data=body, headers={**A, **headers})
    assert words in await _error(response, status)
    listed = await (await client.get("/v2/images", headers=A)).json()
    assert listed["images"] == []


async def test_errors_come_as_json_when_asked(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    missing = str(uuid.uuid4())
    response = await client.get(
        f"/v2/images/{missing}", headers={**A, "Accept": "application/json"}
    )
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found"
    assert missing in body["message"]
    page = await _error(await client.get("/v2/images/not-a-uuid", headers=A), 404)
    assert "<h1>404 Not Found</h1>" in page and "not-a-uuid" in page
    assert "not allowed" in await _error(await client.post("/v2/images/x/file", headers=A), 405)


async def test_list_pages_sorts_and_filters(api: tuple[Client, ApiState, Topology]) -> None:
    client, state, _topology = api
    names = ["e", "b", "d", "a", "c"]
    ids = {}
    for name in names:
        ids[name] = (await _create(client, A, name=name, tags=["even"] if name in "bd" else []))[
            "id"
        ]
    await _create(client, A, name="hidden", os_hidden=True)
    seen, url = [], "/v2/images?limit=2&sort_key=name&sort_dir=asc"
    while url:
        page = await (await client.get(url, headers=A)).json()
        seen += [image["name"] for image in page["images"]]
        url = page.get("next")
        assert page["first"] == "/v2/images?limit=2&sort_key=name&sort_dir=asc"
    assert seen == ["a", "b", "c", "d", "e"]

    async def names_of(query: str) -> list[str]:
        page = await (await client.get(f"/v2/images?{query}", headers=A)).json()
        return [image["name"] for image in page["images"]]

    assert await names_of("sort=name:desc") == ["e", "d", "c", "b", "a"]
    assert sorted(await names_of("tag=even")) == ["b", "d"]
    assert await names_of("os_hidden=true") == ["hidden"]
    assert sorted(await names_of("name=in:a,c")) == ["a", "c"]
    await state.catalog.update(ids["c"], _props(architecture="x86_64"))
    assert await names_of("architecture=x86_64") == ["c"]
    assert await names_of("status=active") == []
    await _error(await client.get("/v2/images?sort_key=colour", headers=A), 400)
    await _error(await client.get(f"/v2/images?marker={uuid.uuid4()}", headers=A), 400)


def _props(**properties: str) -> Any:
    from worker.db.catalog import ImageChanges

    return ImageChanges(set_properties=properties)


async def test_visibility_and_ownership(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    private = await _create(client, A, name="a-private", visibility="private")
    shared = await _create(client, A, name="a-shared")
    public = await _create(client, ADMIN, name="public", visibility="public")
    listed_by_b = await (await client.get("/v2/images", headers=B)).json()
    assert [image["name"] for image in listed_by_b["images"]] == ["public"]
    for image in (private, shared):
        path = f"/v2/images/{image['id']}"
        await _error(await client.get(path, headers=B), 404)
        patch = [{"op": "replace", "path": "/name", "value": "stolen"}]
        await _error(
            await client.patch(path, json=patch, headers={**B, "Content-Type": PATCH_V21}), 404
        )
        await _error(await client.delete(path, headers=B), 404)
        body = {"method": {"name": "web-download", "uri": "http://127.0.0.1/x"}}
        await _error(await client.post(f"{path}/import", json=body, headers=B), 404)
    await _error(await client.delete(f"/v2/images/{public['id']}", headers=B), 403)
    listed_by_admin = await (await client.get("/v2/images", headers=ADMIN)).json()
    assert len(listed_by_admin["images"]) == 3


async def test_patch(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    image = await _create(client, A, name="before")
    path = f"/v2/images/{image['id']}"
    ops = [
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "add", "path": "/architecture", "value": "x86_64"},
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "replace", "path": "/os_hidden", "value": True},
    ]
    response = await client.patch(path, json=ops, headers={**A, "Content-Type": PATCH_V21})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["name"], body["architecture"], body["os_hidden"]) == ("after", "x86_64", True)
    removal = [{"op": "remove", "path": "/hw_disk_bus"}]
    after = await (
        await client.patch(path, json=removal, headers={**A, "Content-Type": PATCH_V21})
    ).json()
    assert "hw_disk_bus" not in after
    await _error(await client.patch(path, json=ops, headers={**A, **JSON}), 415)
    reserved = [{"op": "add", "path": "/os_glance_failed_import", "value": "x"}]
    await _error(
        await client.patch(path, json=reserved, headers={**A, "Content-Type": PATCH_V21}), 403
    )


async def test_stage_streams_into_staging_and_refuses_what_it_must(
    api: tuple[Client, ApiState, Topology], tmp_path: Path
) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="staged", disk_format="raw")
    stage = f"/v2/images/{image['id']}/stage"
    octets = {**A, "Content-Type": "application/octet-stream"}
    too_big = bytes(5 * MiB)
    assert "size cap" in await _error(await client.put(stage, data=too_big, headers=octets), 413)

    async def chunked() -> AsyncIterator[bytes]:  # as glanceclient sends it
        yield b"\0" * MiB
        yield b"x" * MiB

    assert (await client.put(stage, data=chunked(), headers=octets)).status == 204
    shown = await (await client.get(f"/v2/images/{image['id']}", headers=A)).json()
    assert (shown["status"], shown["size"]) == ("uploading", 2 * MiB)
    staged = state.settings.staging.dir / image["id"]
    assert staged.read_bytes() == b"\0" * MiB + b"x" * MiB
    assert staged.stat().st_blocks * 512 < 2 * MiB  # the zero MiB is a hole
    assert list(state.settings.staging.dir.glob(".*")) == []
    await _error(await client.put(stage, data=b"again", headers=octets), 409)
    await _error(
        await client.put(stage, data=b"x", headers={**A, "Content-Type": "text/plain"}), 415
    )


async def test_import_takes_the_lock_and_publishes_once(
    api: tuple[Client, ApiState, Topology],
) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="web")
    path = f"/v2/images/{image['id']}/import"
    body = {
        "method": {"name": "web-download", "uri": "http://127.0.0.1:1/disk.raw"},
        "stores": ["central", "dcn1"],
        "all_stores_must_succeed": False,
    }
    response = await client.post(path, json=body, headers=A)
    assert response.status == 202, await response.text()
    record = await state.records.images.get(image["id"])
    (task,) = await state.records.tasks.list_for_image(image["id"])
    assert record.properties[IMPORT_LOCK] == task.id
    assert (task.status, task.owner, task.type) == (
        TaskStatus.PENDING,
        "project-a",
        TaskType.IMPORT,
    )
    assert task.input is not None and task.input["backend"] == ["central", "dcn1"]
    assert task.request_id == response.headers["x-openstack-request-id"]
    (message,) = await _published(state)
    assert (message["task_id"], message["context"]["owner"]) == (task.id, "project-a")
    assert "being imported" in await _error(await client.post(path, json=body, headers=A), 409)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"stores": ["central"]}, 400, "requires a 'method'"),
        ({"method": {"name": "bogus"}}, 400, "not an import method"),
        ({"method": {"name": "web-download"}}, 400, "needs import_req.method.uri"),
        ({"method": {"name": "web-download", "uri": "ftp://x/y"}}, 400, "does not pass filtering"),
        (
            {"method": {"name": "web-download", "uri": "http://h/x"}, "stores": ["nope"]},
            409,
            "nope",
        ),
        (
            {
                "method": {"name": "web-download", "uri": "http://h/x"},
                "all_stores_must_succeed": "y",
            },
            400,
            "true or false",
        ),
        ({"method": {"name": "glance-direct"}}, 409, "uploading"),
        ({"method": {"name": "copy-image"}, "stores": ["dcn0"]}, 409, "active"),
    ],
)
async def test_bad_imports_leave_no_task(
    api: tuple[Client, ApiState, Topology], body: dict[str, Any], status: int, words: str
) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="q")
    response = await client.post(f"/v2/images/{image['id']}/import", json=body, headers=A)
    assert words in await _error(response, status)
    assert IMPORT_LOCK not in (await state.records.images.get(image["id"])).properties
    assert await _published(state) == []


async def test_download_is_byte_exact(api: tuple[Client, ApiState, Topology]) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="data")
    data = b"\0" * (3 * MiB) + b"imgworker" * 1000
    await _activate(state, image["id"], ("dcn1",), data)
    # Glance's download_image needs the member role: a reader sees the image, not its data.
    refused = await client.get(f"/v2/images/{image['id']}/file", headers=READER)
    assert "download_image" in await _error(refused, 403)
    response = await client.get(f"/v2/images/{image['id']}/file", headers=A)
    assert response.status == 200
    assert response.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    assert int(response.headers["Content-Length"]) == len(data)
    assert await response.read() == data
    queued = await _create(client, A, name="empty")
    assert (await client.get(f"/v2/images/{queued['id']}/file", headers=A)).status == 204


async def test_delete_and_stores_delete_change_the_record_now_and_leave_a_task(
    api: tuple[Client, ApiState, Topology],
) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="multi")
    await _activate(state, image["id"], ("central", "dcn0", "dcn1"), b"x" * 1000)
    stores = f"/v2/stores/dcn0/{image['id']}"
    await _error(await client.delete(f"/v2/stores/nope/{image['id']}", headers=A), 409)
    assert (await client.delete(stores, headers=A)).status == 204
    shown = await (await client.get(f"/v2/images/{image['id']}", headers=A)).json()
    assert shown["stores"] == "central,dcn1"
    await _error(await client.delete(stores, headers=A), 404)
    record = await state.records.images.get(image["id"])
    assert [loc.status for loc in record.locations if loc.store == "dcn0"] == [
        LocationStatus.PENDING_DELETE
    ]
    assert (await client.delete(f"/v2/stores/central/{image['id']}", headers=A)).status == 204
    only_copy = await client.delete(f"/v2/stores/dcn1/{image['id']}", headers=A)
    assert "only store" in await _error(only_copy, 403)

    assert (await client.delete(f"/v2/images/{image['id']}", headers=A)).status == 204
    await _error(await client.get(f"/v2/images/{image['id']}", headers=A), 404)
    tasks = await state.records.tasks.list_for_image(image["id"])
    assert [t.type for t in tasks] == [TaskType.STORE_DELETE] * 2 + [TaskType.IMAGE_DELETE]
    assert all(t.status == TaskStatus.PENDING for t in tasks)
    assert tasks[-1].input is not None and [
        loc["store"]
        for loc in tasks[-1].input["locations"]  # type: ignore[attr-defined]
    ] == ["dcn1"]
    messages = await _published(state)
    assert [m["type"] for m in messages] == ["store_delete", "store_delete", "image_delete"]
    assert await state.records.deletions.pending_count() == 3


async def test_tasks_are_shown_to_their_owner(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    image = await _create(client, A, name="t")
    body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}}
    assert (
        await client.post(f"/v2/images/{image['id']}/import", json=body, headers=A)
    ).status == 202
    listed = await (await client.get(f"/v2/images/{image['id']}/tasks", headers=A)).json()
    (task,) = listed["tasks"]
    assert (task["type"], task["status"], task["owner"]) == (
        "api_image_import",
        "pending",
        "project-a",
    )
    shown = await (await client.get(f"/v2/tasks/{task['id']}", headers=A)).json()
    assert shown["id"] == task["id"]
    await _error(await client.get(f"/v2/tasks/{task['id']}", headers=B), 404)
    assert (await client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).status == 200


@pytest.mark.parametrize(
    ("key_manager", "signed", "travels"),
    [("barbican", True, True), ("barbican", False, False), ("directory", True, False)],
)
async def test_the_callers_token_travels_only_to_read_a_signed_images_barbican_certificate(
    tmp_path: Path, key_manager: str, signed: bool, travels: bool
) -> None:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    topology = Topology()
    settings = make_settings(
        tmp_path,
        broker={
            "exchange": topology.exchange,
            "queue": topology.queue,
            "dead_letter_exchange": topology.dead_exchange,
            "dead_letter_queue": topology.dead_queue,
        },
        api={"auth": "headers"},
        signature={"key_manager": key_manager, "barbican_url": "http://127.0.0.1:1"},
    )
    caller = {**A, "X-Auth-Token": "gAAAAA-callers-token"}
    properties = {"img_signature": "c2ln", "img_signature_certificate_uuid": "c1"}
    try:
        async with api_client(settings) as (client, state):
            image = await _create(client, caller, **(properties if signed else {}))
            body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}}
            reply = await client.post(f"/v2/images/{image['id']}/import", json=body, headers=caller)
            assert reply.status == 202, await reply.text()
            (message,) = await _published(state)
    finally:
        await delete_topology(topology)
    assert message["context"]["owner"] == "project-a"
    assert message["context"].get("token") == ("gAAAAA-callers-token" if travels else None)


async def test_import_and_store_info(api: tuple[Client, ApiState, Topology]) -> None:
    client, _state, _topology = api
    methods = await (await client.get("/v2/info/import", headers=READER)).json()
    assert methods["import-methods"]["value"] == ["web-download", "glance-direct", "copy-image"]
    stores = await (await client.get("/v2/info/stores", headers=READER)).json()
    assert stores["stores"] == [
        {"id": "central", "default": "true"},
        {"id": "dcn0"},
        {"id": "dcn1"},
    ]
    await _error(await client.get("/v2/info/stores/detail", headers=A), 403)
    detail = await (await client.get("/v2/info/stores/detail", headers=ADMIN)).json()
    assert detail["stores"][0]["type"] == "file"


async def test_copy_waits_for_a_pending_removal_from_the_same_store(
    api: tuple[Client, ApiState, Topology],
) -> None:
    client, state, _topology = api
    image = await _create(client, A, name="again")
    await _activate(state, image["id"], ("central", "dcn0"), b"y" * 100)
    assert (await client.delete(f"/v2/stores/dcn0/{image['id']}", headers=A)).status == 204
    body = {"method": {"name": "copy-image"}, "stores": ["dcn0"]}
    refused = await client.post(f"/v2/images/{image['id']}/import", json=body, headers=A)
    assert "still being removed" in await _error(refused, 409)
