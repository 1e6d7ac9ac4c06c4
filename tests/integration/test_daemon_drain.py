"""Who may drain a worker: loopback, or a client with the drain token — never a neighbour.

The neighbour is real: a network namespace of the test's own, reaching the worker's HTTP port
(bound to 0.0.0.0, as in the Kubernetes example) over a veth pair from a private address.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Namespace, namespace
from tests.support.tasks import enqueue_download, opened, terminal
from tests.support.workers import IMGWORKER, Topology, Worker, running_workers, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

TOKEN = "drain-token-of-the-test-0123456789"

#: POST to argv[1] (with argv[2] as bearer token if given); print the status, then the body.
POST = """
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], data=b"", method=sys.argv[3])
if sys.argv[2]:
    request.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status); print(response.read().decode(), end="")
except urllib.error.HTTPError as error:
    print(error.code); print(error.read().decode(), end="")
"""


@pytest.fixture
def neighbour() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


def _request(
    ns: Namespace, worker: Worker, path: str, token: str = "", method: str = "POST"
) -> tuple[int, str]:
    """``method path`` from inside the namespace to the worker's host-side address."""
    url = f"http://{ns.host_address}:{worker.port}{path}"
    result = ns.run(sys.executable, "-c", POST, url, token, method)
    status, _, body = result.stdout.partition("\n")
    assert status.isdigit(), result.stderr
    return int(status), body


def _drain_command(
    worker: Worker, host: str, token: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IMGWORKER_WORKER__DRAIN_TOKEN"}
    if token is not None:
        env["IMGWORKER_WORKER__DRAIN_TOKEN"] = token
    return subprocess.run(
        [IMGWORKER, "drain", "--address", f"{host}:{worker.port}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def _exits(worker: Worker, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while worker.process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {worker.name} did not stop:\n{worker.output()}")
        await asyncio.sleep(0.2)
    return worker.process.returncode


async def test_a_neighbour_without_the_token_cannot_drain(
    tmp_path: Path,
    postgres_url: str,
    broker_topology: Topology,
    small_image_source: str,
    neighbour: Namespace,
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    env = {"IMGWORKER_WORKER__DRAIN_TOKEN": TOKEN}
    async with opened(config) as services:
        with running_workers(config, tmp_path, 1, http_host="0.0.0.0", env=env) as (worker,):
            assert _request(neighbour, worker, "/metrics", method="GET")[0] == 200
            status, body = _request(neighbour, worker, "/drain")
            assert (status, "drain_token" in body) == (403, True)
            assert _request(neighbour, worker, "/drain", token=TOKEN + "x")[0] == 403
            assert _request(neighbour, worker, "/metrics")[0] == 405
            assert _request(neighbour, worker, "/drain", token=TOKEN, method="PUT")[0] == 405
            assert worker.ready()
            _image, task_id = await enqueue_download(services, f"{small_image_source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
            assert f"drain refused for {neighbour.peer_address}" in worker.output()

            assert _request(neighbour, worker, "/drain", token=TOKEN) == (202, "draining\n")
            assert await _exits(worker) == 0


async def test_the_drain_command_sends_the_token(
    tmp_path: Path, postgres_url: str, broker_topology: Topology, neighbour: Namespace
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    env = {"IMGWORKER_WORKER__DRAIN_TOKEN": TOKEN}
    with running_workers(config, tmp_path, 1, http_host="0.0.0.0", env=env) as (worker,):
        # From this host's veth address, not loopback: only the token can open the door.
        refused = _drain_command(worker, neighbour.host_address, token=None)
        assert refused.returncode != 0 and "403" in refused.stderr
        assert worker.ready()
        started = _drain_command(worker, neighbour.host_address, token=TOKEN)
        assert started.returncode == 0, started.stderr
        assert await _exits(worker) == 0


async def test_without_a_token_only_loopback_may_drain(
    tmp_path: Path,
    postgres_url: str,
    broker_topology: Topology,
    small_image_source: str,
    neighbour: Namespace,
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    async with opened(config) as services:
        with running_workers(config, tmp_path, 1, http_host="0.0.0.0") as (worker,):
            assert _request(neighbour, worker, "/drain", token=TOKEN)[0] == 403
            _image, task_id = await enqueue_download(services, f"{small_image_source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
            started = _drain_command(worker, "127.0.0.1", token=None)
            assert started.returncode == 0, started.stderr
            assert await _exits(worker) == 0
