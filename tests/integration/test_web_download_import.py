"""web-download end to end: a real aiohttp server on loopback, the real flow and records."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flows.request import ExpectedChecksum
from tests.support.http import serve_directory
from tests.support.images import convert, make_served_qcow2, sha512_of
from tests.support.settings import make_settings
from worker.config.settings import Settings
from worker.tasks.embedded import import_image
from worker.tasks.services import Services


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def served(tmp_path: Path) -> Path:
    return make_served_qcow2(tmp_path)


async def test_web_download_with_redirect_and_checksum(
    services: Services, settings: Settings, served: Path, tmp_path: Path
) -> None:
    expected = convert(served / "disk.qcow2", tmp_path / "expected.raw", "qcow2", "raw")
    digest = hashlib.sha256((served / "disk.qcow2").read_bytes()).hexdigest()
    async with serve_directory(served) as base:
        result = await import_image(
            services,
            uri=f"{base}/redirect/disk.qcow2",
            disk_format="qcow2",
            stores=["central", "dcn0"],
            checksum=ExpectedChecksum("sha256", digest),
        )
        wrong = await import_image(
            services,
            uri=f"{base}/disk.qcow2",
            disk_format="qcow2",
            checksum=ExpectedChecksum("sha256", "0" * 64),
        )
    assert result.outcome.status == "success", result.outcome.message
    assert result.image.os_hash_value == sha512_of(expected)
    assert result.image.stores == ["central", "dcn0"]
    assert wrong.outcome.status == "failure" and wrong.image.status == "failed"
    assert "checksum" in wrong.task.message and "0" * 64 in wrong.task.message
    assert wrong.image.locations == ()


async def test_web_download_errors_fail_the_image_with_the_reason(
    services: Services, settings: Settings, served: Path
) -> None:
    async with serve_directory(served) as base:
        missing = await import_image(services, uri=f"{base}/absent.qcow2", disk_format="qcow2")
    assert missing.outcome.status == "failure"
    assert missing.image.status == "failed"
    assert "404" in missing.task.message
    assert not settings.staging.dir.exists() or not any(settings.staging.dir.iterdir())
