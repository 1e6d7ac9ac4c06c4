"""Who can reach ``imgworker api`` and whose identity it takes, tried from other hosts.

The other hosts are real: network namespaces of the test's own, reaching the API (bound to
every address) over veth pairs from private addresses, as in the drain test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import identity_headers, running_api
from tests.support.netns import Namespace, namespace
from tests.support.workers import IMGWORKER, free_port
from worker.api.discovery import CURRENT
from worker.api.identity import AUTHENTICATION_REQUIRED, UNVERIFIED

OPT_IN = "IMGWORKER_API__ALLOW_UNAUTHENTICATED_NETWORK"

#: argv: URL, method, headers (JSON), body (JSON or ""); prints the status, then the body.
REQUEST = """
import json, sys, urllib.error, urllib.request
url, method, headers, body = sys.argv[1:5]
request = urllib.request.Request(
    url, method=method, headers=json.loads(headers), data=body.encode() if body else None
)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status); print(response.read().decode(), end="")
except urllib.error.HTTPError as error:
    print(error.code); print(error.read().decode(), end="")
"""

IMAGE = {"name": "from-afar", "disk_format": "raw", "container_format": "bare"}


@pytest.fixture
def neighbour() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """An SQLite configuration: the API records images without a broker or a worker."""
    path = tmp_path / "api.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "records.db"}"\n'
        f'[staging]\ndir = "{tmp_path / "staging"}"\n'
        f'[stores]\ndefault = "local"\n'
        f'[stores.local]\ntype = "file"\npath = "{tmp_path / "local"}"\n'
    )
    return path


def _call(
    ns: Namespace,
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """``GET path`` (``POST`` with a JSON body) from inside ``ns`` to this host's address."""
    url = f"http://{ns.host_address}:{port}{path}"
    sent = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        sent["Content-Type"] = "application/json"
    method = "POST" if body is not None else "GET"
    encoded = json.dumps(body) if body is not None else ""
    result = ns.run(sys.executable, "-c", REQUEST, url, method, json.dumps(sent), encoded)
    status, _, text = result.stdout.partition("\n")
    assert status.isdigit(), result.stderr
    return int(status), text


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_none_beyond_loopback_refuses_to_start_naming_the_key(
    config: Path, neighbour: Namespace, host: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != OPT_IN}
    env.update(IMGWORKER_CONFIG=str(config), IMGWORKER_API__LISTEN=f'"{host}:{port}"')
    result = subprocess.run(
        [IMGWORKER, "api"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert "[api] allow_unauthenticated_network = true" in record["message"]
    assert f'[api] listen = "{host}:{port}" is not loopback only' in record["message"]
    # Nothing was left listening for the other host.
    refused = neighbour.run(
        sys.executable, "-c", REQUEST, f"http://{neighbour.host_address}:{port}/", "GET", "{}", ""
    )
    assert "Connection refused" in refused.stderr


def test_none_with_the_opt_in_serves_the_network_and_warns(
    config: Path, tmp_path: Path, neighbour: Namespace
) -> None:
    with running_api(config, tmp_path, host="0.0.0.0", **{OPT_IN: "true"}) as api:
        status, text = _call(neighbour, api.port, "/versions")
        assert status == 200
        document = json.loads(text)
        assert list(document) == ["versions"] and document["versions"][0]["id"] == CURRENT
        status, text = _call(neighbour, api.port, "/v2/images", body=IMAGE)
        assert status == 201, text
        assert json.loads(text)["owner"] == "admin"
        warnings = [
            json.loads(line)
            for line in api.output().splitlines()
            if '"level": "WARNING"' in line and "allow_unauthenticated_network" in line
        ]
        assert len(warnings) == 1
        assert "anyone who reaches 0.0.0.0:" in warnings[0]["message"]


def test_headers_are_believed_from_the_trusted_proxies_alone(
    config: Path, tmp_path: Path, neighbour: Namespace
) -> None:
    caller = identity_headers("project-p", roles="member,reader", user="u-p")
    admin = identity_headers("project-x", roles="admin,member,reader", user="intruder")
    with namespace() as stranger:
        trusted = f'["127.0.0.0/8", "{neighbour.peer_address}"]'
        environment = {"IMGWORKER_API__AUTH": "headers", "IMGWORKER_API__TRUSTED_PROXIES": trusted}
        with running_api(config, tmp_path, host="0.0.0.0", **environment) as api:
            # The proxy's word is taken: the image is the caller's project's.
            status, text = _call(neighbour, api.port, "/v2/images", caller, IMAGE)
            assert status == 201, text
            created = json.loads(text)
            assert created["owner"] == "project-p"

            # Anyone else naming an identity is refused, with Glance's body, and logged.
            forged = {**admin, "X-Forwarded-For": neighbour.peer_address}
            status, text = _call(
                stranger, api.port, "/v2/images", forged, {**IMAGE, "visibility": "public"}
            )
            assert status == 401
            assert json.loads(text) == {
                "message": AUTHENTICATION_REQUIRED,
                "code": "401 Unauthorized",
                "title": "Unauthorized",
            }
            status, text = _call(stranger, api.port, "/v2/images")
            assert (status, json.loads(text)["message"]) == (401, UNVERIFIED)
            output = api.output()
            assert f"from {stranger.peer_address}, which is not in [api] trusted_proxies" in output
            assert f"from {neighbour.peer_address}, which" not in output

            # Through the proxy an admin sees every image: the stranger made none.
            status, text = _call(neighbour, api.port, "/v2/images", admin)
            assert [image["id"] for image in json.loads(text)["images"]] == [created["id"]]
