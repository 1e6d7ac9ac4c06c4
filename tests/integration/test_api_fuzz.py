"""Fuzzing the Image API: whatever a client sends, the answer is never a 5xx.

Hypothesis generates requests against every route — real and random image ids, ids that are
not UUIDs, query parameters with arbitrary values, arbitrary JSON and arbitrary bytes under
every media type — and the API must answer each with a 2xx/3xx/4xx in Glance's shape, with
a request id, never a server error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import api_client, identity_headers
from tests.support.services import require_tcp
from tests.support.settings import make_settings
from tests.support.workers import Topology, delete_topology
from worker.api.listing import KNOWN

OWNER = identity_headers("fuzz-project", roles="admin,member,reader")
ROUTES = [
    ("GET", "/"),
    ("GET", "/versions"),
    ("GET", "/v2/schemas/{word}"),
    ("POST", "/v2/images"),
    ("GET", "/v2/images"),
    ("GET", "/v2/images/{id}"),
    ("PATCH", "/v2/images/{id}"),
    ("DELETE", "/v2/images/{id}"),
    ("PUT", "/v2/images/{id}/stage"),
    ("PUT", "/v2/images/{id}/file"),
    ("GET", "/v2/images/{id}/file"),
    ("POST", "/v2/images/{id}/import"),
    ("GET", "/v2/images/{id}/tasks"),
    ("PUT", "/v2/images/{id}/tags/{word}"),
    ("DELETE", "/v2/images/{id}/tags/{word}"),
    ("GET", "/v2/tasks/{id}"),
    ("GET", "/v2/info/import"),
    ("GET", "/v2/info/stores"),
    ("GET", "/v2/info/stores/detail"),
    ("DELETE", "/v2/stores/{word}/{id}"),
]
MEDIA_TYPES = [
    "application/json",
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
    "application/octet-stream",
    "text/plain",
    "",
]
KEYS = st.sampled_from(
    ["name", "disk_format", "container_format", "visibility", "protected", "os_hidden",
     "min_ram", "min_disk", "tags", "id", "owner", "method", "stores", "all_stores",
     "all_stores_must_succeed", "op", "path", "value", "status", "os_glance_x", "uri"]
) | st.text(max_size=8)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=12,
)
PATH_TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#")
WORDS = st.sampled_from(["central", "dcn0", "image", "images", "task", "nope", "-", "%2e%2e"]) | (
    st.text(alphabet=PATH_TEXT, min_size=1, max_size=12)
)


@pytest.fixture
async def fuzzed(tmp_path: Path) -> AsyncIterator[tuple[Any, list[str]]]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    topology = Topology()
    configuration = make_settings(
        tmp_path,
        broker={"exchange": topology.exchange, "queue": topology.queue,
                "dead_letter_exchange": topology.dead_exchange,
                "dead_letter_queue": topology.dead_queue},
        api={"auth": "headers", "max_json_bytes": 8192, "upload_wait_seconds": 0.5},
        safety={"image_size_cap": 1024 * 1024, "allowed_schemes": ["http"]},
    )  # fmt: skip
    try:
        async with api_client(configuration) as (client, _state):
            ids = []
            for name in ("a", "b"):
                response = await client.post(
                    "/v2/images",
                    json={"name": name, "disk_format": "raw", "container_format": "bare"},
                    headers=OWNER,
                )
                ids.append((await response.json())["id"])
            yield client, ids
    finally:
        await delete_topology(topology)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_request_gets_a_server_error(fuzzed: tuple[Any, list[str]], data: Any) -> None:
    client, ids = fuzzed
    method, template = data.draw(st.sampled_from(ROUTES))
    image_id = data.draw(
        st.sampled_from(ids) | st.builds(lambda: str(uuid.uuid4())) | WORDS, label="id"
    )
    path = template.format(id=image_id, word=data.draw(WORDS, label="word"))
    keys = st.sampled_from(sorted(KNOWN)) | st.text(max_size=6)
    query = data.draw(st.dictionaries(keys, st.text(max_size=12), max_size=4), label="query")
    media = data.draw(st.sampled_from(MEDIA_TYPES), label="media")
    raw = data.draw(st.booleans(), label="raw bytes")
    body = data.draw(st.binary(max_size=64)) if raw else json.dumps(data.draw(JSON)).encode()
    headers = {**OWNER, **({"Content-Type": media} if media else {})}
    async with client.request(method, path, params=query, data=body, headers=headers) as reply:
        text = await reply.text(errors="replace")
        assert reply.status < 500, (
            f"{method} {path} {query} {body[:200]!r} -> {reply.status}: {text}"
        )
        assert reply.headers["x-openstack-request-id"].startswith("req-")
