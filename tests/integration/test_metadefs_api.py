"""The metadef API in process (SQLite and PostgreSQL): Glance's answers, the guide's
lock-down by default, protected namespaces, and the per-project limit under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.api import api_client, identity_headers
from tests.support.settings import make_settings
from worker.api.state import ApiState

NS = "/v2/metadefs/namespaces"
MEMBER_A = identity_headers("project-a")
MEMBER_B = identity_headers("project-b")
ADMIN = identity_headers("project-admin", roles="admin,member,reader")
#: The guide's 1.1.7.2 procedure, reduced to the writes these tests make.
OPEN_UP = "\n".join(
    f'"{rule}": "rule:metadef_default"'
    for rule in (
        "add_metadef_namespace", "add_metadef_property", "add_metadef_tag", "add_metadef_tags",
        "add_metadef_object", "delete_metadef_namespace", "modify_metadef_namespace",
    )
)  # fmt: skip
LIMIT = 6

Client = TestClient[Any, Any]


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Client, ApiState]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("")
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        api={"auth": "headers", "policy_file": str(policy)},
        metadefs={"project_limit": LIMIT},
    )
    async with api_client(settings) as (client, state):
        yield client, state


async def call(
    client: Client, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    sent = {**headers, "Accept": "application/json"}
    async with client.request(method, path, json=body, headers=sent) as reply:
        text = await reply.text()
        return reply.status, (await reply.json() if text.startswith(("{", "[")) else text)


def open_up(state: ApiState, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(OPEN_UP + "\n")
    assert state.policy.refresh()


async def test_the_lock_down_is_the_default_and_visibility_is_glances(
    api: tuple[Client, ApiState],
) -> None:
    client, _state = api
    status, body = await call(client, "POST", NS, MEMBER_A, {"namespace": "mine"})
    assert (status, body["message"]) == (
        403, "You are not authorized to complete add_metadef_namespace action."
    )  # fmt: skip
    for name, visibility in (("Hidden::One", "private"), ("Shown::One", "public")):
        created = {"namespace": name, "visibility": visibility, "display_name": name}
        status, body = await call(client, "POST", NS, ADMIN, created)
        assert status == 201, body
        assert body["owner"] == "project-admin" and body["self"] == f"{NS}/{name}"
    status, listed = await call(client, "GET", NS, MEMBER_A)
    assert [n["namespace"] for n in listed["namespaces"]] == ["Shown::One"]
    assert (await call(client, "GET", f"{NS}/Hidden::One", MEMBER_A))[0] == 404
    assert (await call(client, "PUT", f"{NS}/Hidden::One", MEMBER_A, {"namespace": "x"}))[0] == 404
    # Seen but not writable: 403, as Glance answers.
    assert (await call(client, "DELETE", f"{NS}/Shown::One", MEMBER_A))[0] == 403
    status, listed = await call(client, "GET", f"{NS}?visibility=private", ADMIN)
    assert [n["namespace"] for n in listed["namespaces"]] == ["Hidden::One"]
    status, body = await call(client, "GET", f"{NS}?visibility=shared", ADMIN)
    assert status == 400 and "visibility" in body["message"]


async def test_every_kind_of_content_and_the_protected_rule(api: tuple[Client, ApiState]) -> None:
    client, _state = api
    ns = f"{NS}/OS::Test"
    assert (await call(client, "POST", NS, ADMIN, {"namespace": "OS::Test"}))[0] == 201
    prop = {"name": "hw_rng", "title": "RNG", "type": "string", "enum": ["a", "b"], "x": 1}
    status, body = await call(client, "POST", f"{ns}/properties", ADMIN, prop)
    assert (status, body) == (
        201,
        {"name": "hw_rng", "title": "RNG", "type": "string", "enum": ["a", "b"]},
    )
    assert (await call(client, "POST", f"{ns}/properties", ADMIN, prop))[0] == 409
    bad = {"name": "p2", "type": "string"}
    status, body = await call(client, "POST", f"{ns}/properties", ADMIN, bad)
    assert status == 400 and "needs a 'title'" in body["message"]
    obj = {
        "name": "Limits",
        "required": ["quota"],
        "properties": {"quota": {"title": "Q", "type": "integer"}},
    }
    status, body = await call(client, "POST", f"{ns}/objects", ADMIN, obj)
    assert status == 201 and body["required"] == ["quota"]
    renamed = {**obj, "name": "CPU Limits"}
    status, body = await call(client, "PUT", f"{ns}/objects/Limits", ADMIN, renamed)
    assert (status, body["name"]) == (200, "CPU Limits")
    status, body = await call(
        client, "POST", f"{ns}/tags", ADMIN, {"tags": [{"name": "a"}, {"name": "b"}]}
    )
    assert (status, body) == (201, {"tags": [{"name": "a"}, {"name": "b"}]})
    appended = {**ADMIN, "X-Openstack-Append": "true"}
    assert (await call(client, "POST", f"{ns}/tags", appended, {"tags": [{"name": "c"}]}))[0] == 201
    assert (await call(client, "POST", f"{ns}/tags/d", ADMIN))[0] == 201
    assert (await call(client, "PUT", f"{ns}/tags/d", ADMIN, {"name": "e"}))[1]["name"] == "e"
    association = {"name": "OS::Glance::Image", "prefix": "hw_"}
    assert (await call(client, "POST", f"{ns}/resource_types", ADMIN, association))[0] == 201
    status, shown = await call(client, "GET", f"{ns}?resource_type=OS::Glance::Image", ADMIN)
    assert list(shown["properties"]) == ["hw_hw_rng"]
    assert [t["name"] for t in shown["tags"]] == ["a", "b", "c", "e"]
    assert shown["objects"][0]["required"] == ["hw_quota"]
    status, types = await call(client, "GET", "/v2/metadefs/resource_types", MEMBER_A)
    assert [t["name"] for t in types["resource_types"]] == ["OS::Glance::Image"]

    protect = {"namespace": "OS::Test", "protected": True, "visibility": "public"}
    assert (await call(client, "PUT", ns, ADMIN, protect))[0] == 200
    for path in (ns, f"{ns}/tags/a", f"{ns}/properties/hw_rng", f"{ns}/objects/CPU Limits",
                 f"{ns}/resource_types/OS::Glance::Image", f"{ns}/tags"):  # fmt: skip
        status, body = await call(client, "DELETE", path, ADMIN)
        assert status == 403 and "is protected and cannot be deleted" in body["message"], path
    assert (await call(client, "PUT", ns, ADMIN, {"namespace": "OS::Test"}))[0] == 200
    assert (await call(client, "DELETE", f"{ns}/tags", ADMIN))[0] == 204
    assert (await call(client, "GET", f"{ns}/tags", ADMIN))[1] == {"tags": []}
    assert (await call(client, "DELETE", ns, ADMIN))[0] == 204
    assert (await call(client, "GET", ns, ADMIN))[0] == 404


async def test_the_metadef_schemas(api: tuple[Client, ApiState]) -> None:
    client, _state = api
    for name in ("namespace", "namespaces", "object", "objects", "property", "properties",
                 "tag", "tags", "resource_type", "resource_types"):  # fmt: skip
        status, body = await call(client, "GET", f"/v2/schemas/metadefs/{name}", MEMBER_A)
        assert status == 200 and body["name"], name
    assert (await call(client, "POST", "/v2/schemas/metadefs/tag", MEMBER_A, {}))[0] == 405


async def test_with_writes_open_the_limit_still_stops_a_project(
    api: tuple[Client, ApiState], tmp_path: Path
) -> None:
    client, state = api
    open_up(state, tmp_path)
    with_three = {"namespace": "A::Own", "properties": {
        f"p{i}": {"title": "P", "type": "string"} for i in range(3)}}  # fmt: skip
    status, body = await call(client, "POST", NS, MEMBER_A, with_three)
    assert status == 201 and body["owner"] == "project-a"
    given = {"namespace": "B::Given", "owner": "project-b"}
    assert (await call(client, "POST", NS, MEMBER_A, given))[0] == 403
    # LIMIT - 4 more tag records fit; many requests at once must not pass it together.
    tags = [call(client, "POST", f"{NS}/A::Own/tags/t{i}", MEMBER_A) for i in range(6)]
    statuses = sorted(status for status, _body in await asyncio.gather(*tags))
    assert statuses == [201] * (LIMIT - 4) + [413] * (6 - LIMIT + 4)
    status, body = await call(client, "POST", NS, MEMBER_A, {"namespace": "A::More"})
    assert status == 413
    assert body["message"] == (
        f"Project project-a may own at most {LIMIT} metadef records (namespaces, objects, "
        f"properties, tags and resource type associations); it owns {LIMIT} and this request "
        "adds 1. Delete some, or ask the cloud admin to raise [metadefs] project_limit."
    )
    # Another project has its own allowance; an admin has none to exhaust.
    assert (await call(client, "POST", NS, MEMBER_B, {"namespace": "B::Own"}))[0] == 201
    assert (await call(client, "POST", f"{NS}/A::Own/tags/by-admin", ADMIN))[0] == 201
    assert (await call(client, "DELETE", f"{NS}/A::Own", MEMBER_A))[0] == 204
    assert (await call(client, "POST", NS, MEMBER_A, {"namespace": "A::More"}))[0] == 201
