"""A full staging area, for real (a 2 MiB tmpfs): a reason naming it, never a traceback.

From the CLI (``imgworker import --file``, and a web-download run by the import flow) and
from the API (an upload): one line that names the staging area and what to do, and nothing
left behind — no partial file, no image made for data that never arrived.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.states import ImageStatus
from tests.support.api import api_client
from tests.support.images import MiB
from tests.support.settings import make_settings
from tests.support.web_source import web_source
from tests.support.workers import IMGWORKER


@pytest.fixture
def full_staging(tmp_path: Path) -> Iterator[Path]:
    """A staging directory on a 2 MiB tmpfs of its own (unmounted after)."""
    if os.geteuid() != 0:
        pytest.fail("a small file system for the staging area needs root (mount -t tmpfs)")
    staging = tmp_path / "staging"
    staging.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(staging)], check=True)
    try:
        yield staging
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=True)


def _config(root: Path, staging: Path) -> Path:
    path = root / "imgworker.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{root / "imgworker.db"}"\n\n'
        f'[staging]\ndir = "{staging}"\n\n'
        '[stores]\ndefault = "central"\n\n'
        f'[stores.central]\ntype = "file"\npath = "{root / "central"}"\n\n'
        "[safety]\nallow_private_addresses = true\nallowed_ports = []\n"
        "staging_min_free_bytes = 0\n"
    )
    return path


def _imgworker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGWORKER, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER_")},
    )


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*")) if directory.exists() else []


def test_a_file_import_into_a_full_staging_area_says_so_in_one_line(
    tmp_path: Path, full_staging: Path
) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(8 * MiB))
    config = _config(tmp_path, full_staging)
    result = _imgworker(config, "import", "--file", str(disk), "--disk-format", "raw")
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        f"Error: the staging area cannot take the file: {full_staging} is full (No space left "
        "on device); free space there, or point [staging] dir at a larger file system"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert _files(full_staging) == []
    assert _files(tmp_path / "central") == []
    listed = _imgworker(config, "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "", listed


def test_a_download_into_a_full_staging_area_fails_the_import_naming_it(
    tmp_path: Path, full_staging: Path
) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "disk.raw").write_bytes(os.urandom(8 * MiB))
    config = _config(tmp_path, full_staging)
    with web_source(www) as base:
        result = _imgworker(
            config, "import", "--uri", f"{base}/disk.raw", "--disk-format", "raw", "--json"
        )
    assert result.returncode == 1, result
    *steps, last = result.stderr.splitlines()
    assert any(line.split()[:2] == ["stage", "FAILED"] for line in steps), steps
    assert last == (
        "error: import failed: stage: the staging area cannot take the download: "
        f"{full_staging} is full (No space left on device); free space there, or point "
        "[staging] dir at a larger file system"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert _files(full_staging) == []


async def test_an_upload_into_a_full_staging_area_is_507_naming_it(
    tmp_path: Path, full_staging: Path
) -> None:
    settings = make_settings(tmp_path, staging={"dir": str(full_staging)})
    async with api_client(settings) as (client, state):
        created = await client.post(
            "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
        )
        image_id = (await created.json())["id"]
        response = await client.put(
            f"/v2/images/{image_id}/stage",
            data=os.urandom(8 * MiB),
            headers={"Content-Type": "application/octet-stream", "Accept": "application/json"},
        )
        assert response.status == 507, await response.text()
        message = (await response.json())["message"]
        assert message == (
            f"the staging area cannot take the upload: {full_staging} is full (No space left "
            "on device); free space there, or point [staging] dir at a larger file system"
        )
        assert _files(full_staging) == []
        assert (await state.records.images.get(image_id)).status == ImageStatus.QUEUED
