"""A web-download started before its import (``imgworker import --uri``), against a real
aiohttp server on loopback, the real flow and records, and the real command."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from flows.config import FlowSettings
from flows.errors import SafetyRefusal
from flows.policy import SafetyPolicy
from flows.request import WEB_DOWNLOAD, ExpectedChecksum, ImportRequest
from flows.sources.prefetch import Prefetch, remove_stale_prefetches
from tests.support.http import serve_app, serve_directory, stalled_body
from tests.support.images import MiB, convert, make_served_qcow2, sha512_of
from tests.support.settings import make_settings
from worker.config.settings import Settings
from worker.tasks.embedded import import_image
from worker.tasks.services import Services

BODY = os.urandom(5 * MiB + 17)
POLICY = SafetyPolicy(allowed_ports=(), trusted_hosts=("127.0.0.1",), staging_min_free_bytes=0)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def image(request: web.Request) -> web.StreamResponse:
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/image", image)
    app.router.add_get("/stall", stalled_body)
    async with serve_app(app) as base:
        yield base


def _flow_settings(staging: Path, policy: SafetyPolicy = POLICY) -> FlowSettings:
    return FlowSettings(staging_dir=staging, safety=policy)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_adopting_moves_the_file_and_replays_the_progress(
    server: str, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    prefetch = Prefetch(f"{server}/image", None, _flow_settings(staging)).start()
    counted: list[int] = []
    sizes: list[int | None] = []
    try:
        await asyncio.sleep(0.2)  # some or all of it arrives before the step asks
        await prefetch.adopt(staging / "IMAGE", counted.append, sizes.append)
    finally:
        prefetch.close()
    assert (staging / "IMAGE").read_bytes() == BODY
    assert sum(counted) == len(BODY) and sizes == [len(BODY)]
    assert _files(staging) == ["IMAGE"]


async def test_its_error_is_the_step_error_and_nothing_is_left(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    # The default policy refuses a loopback source before any connection.
    settings = _flow_settings(staging, SafetyPolicy(staging_min_free_bytes=0))
    prefetch = Prefetch("http://127.0.0.1/disk", None, settings).start()
    try:
        with pytest.raises(SafetyRefusal) as refused:
            await prefetch.adopt(staging / "IMAGE", lambda n: None, lambda n: None)
    finally:
        prefetch.close()
    assert refused.value.check == "uri_address"
    assert _files(staging) == []


async def test_one_never_adopted_is_stopped_and_removed(server: str, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    finished = Prefetch(f"{server}/image", None, _flow_settings(staging)).start()
    # Well within the stall's 60 s: close cuts the socket rather than waiting it out.
    stalled = Prefetch(f"{server}/stall", None, _flow_settings(staging)).start()
    async with asyncio.timeout(30):
        while len(_files(staging)) < 2:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(finished.close)
        await asyncio.to_thread(stalled.close)
    assert _files(staging) == []


async def test_cancelling_the_step_stops_the_download(server: str, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    prefetch = Prefetch(f"{server}/stall", None, _flow_settings(staging)).start()
    adopting = asyncio.create_task(
        prefetch.adopt(staging / "IMAGE", lambda n: None, lambda n: None)
    )
    await asyncio.sleep(0.3)
    adopting.cancel()
    done, _ = await asyncio.wait([adopting], timeout=30)
    assert done == {adopting} and adopting.cancelled()
    prefetch.close()
    assert _files(staging) == []


def test_it_serves_only_the_request_it_was_started_for(tmp_path: Path) -> None:
    sha = ExpectedChecksum("sha256", "0" * 64)
    prefetch = Prefetch("http://example.com/a", sha, _flow_settings(tmp_path))
    asked = ImportRequest(method=WEB_DOWNLOAD, uri="http://example.com/a", checksum=sha)
    assert prefetch.serves(asked)
    assert not prefetch.serves(dataclasses.replace(asked, uri="http://example.com/b"))
    assert not prefetch.serves(dataclasses.replace(asked, checksum=None))
    assert not prefetch.serves(dataclasses.replace(asked, method="glance-direct"))


@pytest.fixture
def served(tmp_path: Path) -> Path:
    return make_served_qcow2(tmp_path)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


async def test_the_embedded_import_stages_the_prefetched_file(
    settings: Settings, served: Path, tmp_path: Path
) -> None:
    expected = convert(served / "disk.qcow2", tmp_path / "expected.raw", "qcow2", "raw")
    services = await Services.open(settings)
    try:
        async with serve_directory(served) as base:
            uri = f"{base}/disk.qcow2"
            prefetch = Prefetch(uri, None, settings.flow_settings()).start()
            try:
                result = await import_image(
                    services, uri=uri, disk_format="qcow2", stores=["central"], prefetch=prefetch
                )
            finally:
                prefetch.close()
    finally:
        await services.close()
    assert result.outcome.status == "success", result.outcome.message
    assert result.image.os_hash_value == sha512_of(expected)
    assert not prefetch.serves(ImportRequest(method=WEB_DOWNLOAD, uri=uri))  # it was used
    assert _files(settings.staging.dir) == []


async def test_the_command_leaves_no_prefetch_behind(tmp_path: Path, served: Path) -> None:
    env = {
        **os.environ,
        "IMGWORKER_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "IMGWORKER_STAGING__DIR": str(tmp_path / "staging"),
        "IMGWORKER_SAFETY__STAGING_MIN_FREE_BYTES": "0",
        "IMGWORKER_SAFETY__TRUSTED_HOSTS": '["127.0.0.1"]',
        "IMGWORKER_SAFETY__ALLOWED_PORTS": "[]",
        "IMGWORKER_STORES__DEFAULT": "central",
        "IMGWORKER_STORES__CENTRAL__TYPE": "file",
        "IMGWORKER_STORES__CENTRAL__PATH": str(tmp_path / "central"),
    }
    imgworker = str(Path(sys.executable).parent / "imgworker")

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            imgworker,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async with serve_directory(served) as base:
        uri = f"{base}/disk.qcow2"
        code, out, err = await cli("import", "--uri", uri, "--disk-format", "qcow2", "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "active"
        # Refused before its flow ran (no such store): the download it began is gone too.
        code, out, err = await cli(
            "import", "--uri", uri, "--disk-format", "qcow2", "--store", "nowhere"
        )
        assert code != 0 and "nowhere" in err and "Traceback" not in err
    assert _files(tmp_path / "staging") == []


def test_files_of_a_command_that_died_are_removed_later(tmp_path: Path) -> None:
    dead = [tmp_path / ".prefetch-dead", tmp_path / "..prefetch-dead.download"]
    live = [tmp_path / ".prefetch-live", tmp_path / "IMAGE", tmp_path / ".IMAGE.stage-1.partial"]
    for path in dead + live:
        path.write_bytes(b"x")
    for path in [*dead, tmp_path / "IMAGE", tmp_path / ".IMAGE.stage-1.partial"]:
        os.utime(path, (1, 1))  # old, but only prefetch files are this module's to remove
    remove_stale_prefetches(tmp_path)
    assert _files(tmp_path) == sorted(p.name for p in live)
