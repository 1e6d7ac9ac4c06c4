"""A refused web-download names the setting that refused it, as the user reads it: through the
real glance client (no HTML escaping, the URI once) and through ``imgworker import`` (which
leaves no image behind). Real processes: ``imgworker api``, the clients, ``imgworker import``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ApiProcess, running_api
from tests.support.clients import Clients, properties, unauthenticated
from tests.support.workers import IMGWORKER, Topology, write_config

#: Where the refused images would come from: this host, on a port that is not 80 or 443.
URI = "http://127.0.0.1:18088/cirros.qcow2"


@pytest.fixture
def api(tmp_path: Path, postgres_url: str, broker_topology: Topology) -> Iterator[ApiProcess]:
    config = write_config(tmp_path, postgres_url, broker_topology)
    # The default [safety] (write_config's lets anything in): ports 80 and 443, no loopback.
    config.write_text(config.read_text().split("[safety]")[0])
    with running_api(config, tmp_path) as process:
        yield process


def test_the_glance_client_shows_each_refusal_plainly(api: ApiProcess, tmp_path: Path) -> None:
    clients = unauthenticated(api.url, tmp_path / "home")
    port = _create_via_import(clients, URI)
    assert port.returncode != 0
    assert port.stderr.strip() == (
        "HTTP 400 Bad Request: URI for web-download does not pass filtering: "
        f"{URI}: port 18088 is not allowed ([safety] allowed_ports = [80, 443]); add 18088 "
        "there to allow it"
    )
    loopback = _create_via_import(clients, "http://127.0.0.1/cirros.qcow2")
    assert loopback.returncode != 0
    assert loopback.stderr.strip() == (
        "HTTP 400 Bad Request: URI for web-download does not pass filtering: "
        "http://127.0.0.1/cirros.qcow2: host '127.0.0.1' resolves to 127.0.0.1, a loopback "
        "address; downloads from internal addresses are refused: list the host in [safety] "
        "trusted_hosts to allow it (an internal mirror)"
    )
    for said in (port.stderr, loopback.stderr):
        assert "&#" not in said and "&amp;" not in said
    # As with Glance, the image the client created before asking for the import stays: the
    # API refused the import, not the image.
    listed = clients.glance("image-list").ok().stdout
    assert listed.count("refused") == 2


def _create_via_import(clients: Clients, uri: str) -> subprocess.CompletedProcess[str]:
    done = clients.glance(
        "image-create-via-import",
        "--container-format", "bare",
        "--disk-format", "qcow2",
        "--name", "refused",
        "--import-method", "web-download",
        "--uri", uri,
    )  # fmt: skip
    created = properties(done.stdout)
    assert created.get("status") == "queued", done
    return subprocess.CompletedProcess(done.argv, done.returncode, done.stdout, done.stderr)


def test_an_embedded_import_refused_leaves_no_image(tmp_path: Path) -> None:
    config = tmp_path / "embedded.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "records.db"}"\n'
        f'[staging]\ndir = "{tmp_path / "staging"}"\n'
        f'[stores]\ndefault = "local"\n[stores.local]\ntype = "file"\npath = "{tmp_path / "s"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER")}
    env["IMGWORKER_CONFIG"] = str(config)

    def imgworker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [IMGWORKER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    refused = imgworker("import", "--uri", URI, "--disk-format", "qcow2")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"Error: {URI}: port 18088 is not allowed ([safety] allowed_ports = [80, 443]); add "
        "18088 there to allow it"
    )
    assert "Traceback" not in refused.stderr
    listed = imgworker("list")
    assert listed.returncode == 0 and listed.stdout == ""
