"""Several API replicas share the database, the broker and the staging area.

An image created through one replica is staged and imported through another; a replica
killed in the middle of a stage upload leaves nothing the record believes in.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.api import running_api
from tests.support.images import make_sample_qcow2
from tests.support.workers import Topology, running_workers, write_config

MiB = 1024 * 1024


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as response:
        assert response.status < 300, await response.text()
        return await response.json() if response.content_length else None


async def _until_active(session: aiohttp.ClientSession, url: str, image_id: str) -> dict[str, Any]:
    for _ in range(600):
        image = await _json(session, "GET", f"{url}/v2/images/{image_id}")
        if image["status"] in ("active", "failed") and "os_glance_import_task" not in image:
            return dict(image)
        await asyncio.sleep(0.2)
    raise AssertionError(f"image {image_id} did not finish")


async def test_two_replicas_and_two_workers(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    source = make_sample_qcow2(tmp_path / "disk.qcow2", 32 * MiB, 6 * MiB)
    config = write_config(tmp_path, postgres_url, broker_topology)
    with (
        running_api(config, tmp_path, "api1") as one,
        running_api(config, tmp_path, "api2") as two,
        running_workers(config, tmp_path, 2),
    ):
        async with aiohttp.ClientSession() as session:
            image = await _json(
                session,
                "POST",
                f"{one.url}/v2/images",
                json={"name": "shared", "disk_format": "qcow2", "container_format": "bare"},
            )
            async with session.put(
                f"{two.url}/v2/images/{image['id']}/stage",
                data=source.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            ) as staged:
                assert staged.status == 204
            shown = await _json(session, "GET", f"{one.url}/v2/images/{image['id']}")
            assert shown["status"] == "uploading"
            await _json(
                session,
                "POST",
                f"{two.url}/v2/images/{image['id']}/import",
                json={"method": {"name": "glance-direct"}, "stores": ["central", "dcn0"]},
            )
            done = await _until_active(session, one.url, image["id"])
    assert (done["status"], done["stores"]) == ("active", "central,dcn0")


async def test_a_replica_killed_mid_stage_leaves_nothing_half_recorded(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    staging = tmp_path / "staging"
    with running_api(config, tmp_path, "api1") as one, running_api(config, tmp_path, "api2") as two:
        async with aiohttp.ClientSession() as session:
            image = await _json(
                session,
                "POST",
                f"{one.url}/v2/images",
                json={"name": "cut", "disk_format": "raw", "container_format": "bare"},
            )
            sent = asyncio.Event()

            async def body() -> AsyncIterator[bytes]:
                for _ in range(4):
                    yield b"\x5a" * MiB
                sent.set()
                await asyncio.sleep(60)  # never finishes: the replica dies first
                yield b""

            upload = asyncio.create_task(
                session.put(
                    f"{one.url}/v2/images/{image['id']}/stage",
                    data=body(),
                    headers={"Content-Type": "application/octet-stream"},
                )
            )
            await asyncio.wait_for(sent.wait(), 30)
            await asyncio.sleep(0.5)  # let the replica write what it received
            one.process.send_signal(signal.SIGKILL)
            one.process.wait(10)
            upload.cancel()
            await asyncio.gather(upload, return_exceptions=True)

            shown = await _json(session, "GET", f"{two.url}/v2/images/{image['id']}")
            assert (shown["status"], shown["size"]) == ("queued", None)
            assert not (staging / image["id"]).exists()
            partials = list(staging.glob(f".{image['id']}.stage-*.partial"))
            assert len(partials) == 1  # hidden, never published; removed once stale

            data = b"\x00" * MiB + b"imgworker" * 1000
            async with session.put(
                f"{two.url}/v2/images/{image['id']}/stage",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            ) as staged:
                assert staged.status == 204
            shown = await _json(session, "GET", f"{two.url}/v2/images/{image['id']}")
            assert (shown["status"], shown["size"]) == ("uploading", len(data))
            assert (staging / image["id"]).read_bytes() == data

            await _json(session, "DELETE", f"{two.url}/v2/images/{image['id']}")
            # The delete task clears the staged bits and the dead replica's partial upload.
            with running_workers(config, tmp_path, 1):
                for _ in range(300):
                    if not any(staging.glob(f"*{image['id']}*")):
                        break
                    await asyncio.sleep(0.1)
    assert not any(staging.glob(f"*{image['id']}*"))
