"""An import no worker takes says why it does not move: its task's message, the API's log and
the API's metric; once a worker starts, it runs. Real processes: ``imgworker api``, the glance
client, then ``imgworker run``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.request import urlopen

from tests.support.api import running_api
from tests.support.clients import unauthenticated, web_download
from tests.support.images import MiB, convert, make_sparse_raw
from tests.support.web_source import web_source
from tests.support.workers import Topology, free_port, running_workers, write_config


def test_a_task_without_a_worker_says_it_waits_for_one(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    config = write_config(tmp_path, postgres_url, broker_topology)
    metrics_port = free_port()
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(tmp_path / "small.raw", 2 * MiB, [(0, MiB)])
    convert(tmp_path / "small.raw", www / "small.qcow2", "raw", "qcow2")
    with (
        web_source(www) as small_image_source,
        running_api(
            config, tmp_path, IMGWORKER_API__METRICS_LISTEN=f'"127.0.0.1:{metrics_port}"'
        ) as api,
    ):
        clients = unauthenticated(api.url, tmp_path / "home")
        image_id = web_download(clients, "waits", f"{small_image_source}/small.qcow2")
        waiting = (
            f"waiting for a worker: no worker consumes queue {broker_topology.queue} (start "
            "imgworker run with this [broker]); the task runs as soon as one does"
        )
        tasks = clients.glance("image-tasks", image_id).ok().stdout
        assert waiting in "".join(line.strip(" |") for line in tasks.splitlines()), tasks
        warnings = [
            json.loads(line)
            for line in api.output().splitlines()
            if '"WARNING"' in line and "waiting for a worker" in line
        ]
        assert len(warnings) == 1 and warnings[0]["message"].endswith(waiting)
        with urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
            scraped = reply.read().decode()
        assert "imgworker_api_tasks_without_worker_total 1.0" in scraped
        with running_workers(config, tmp_path, 1):
            image = api.settled(image_id)
        assert image["status"] == "active"
        (task,) = json.loads(_get(f"{api.url}/v2/images/{image_id}/tasks"))["tasks"]
        assert task["status"] == "success" and "waiting" not in task["message"]
        # A worker is attached now: the next import says nothing of waiting.
        with running_workers(config, tmp_path, 1):
            second = web_download(clients, "runs", f"{small_image_source}/small.qcow2")
            assert api.settled(second)["status"] == "active"
        assert len([line for line in api.output().splitlines() if "waiting for a" in line]) == 1


def _get(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urlopen(url, timeout=5) as reply:
                return str(reply.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
