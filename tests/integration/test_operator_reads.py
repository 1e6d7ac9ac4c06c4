"""What an operator reads while and after imports run: the task's progress, why an image or a
store failed, and a log that means what it says. Real processes: ``imgworker run`` on a fresh
PostgreSQL database, the operator's ``imgworker`` commands, a slow web source."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.images import MiB, convert, make_sparse_raw
from tests.support.web_source import web_source
from tests.support.workers import IMGWORKER, Topology, Worker, running_workers, write_config
from worker.db.schema import SCHEMA_HEAD

#: The source is served at this rate: staging lasts a few seconds, long enough to watch.
RATE = 4 * MiB


@pytest.fixture
def source(tmp_path: Path) -> Iterator[str]:
    """A web server whose ``/slow/disk.qcow2`` (64 MiB virtual, 12 MiB of data) comes slowly."""
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(tmp_path / "disk.raw", 64 * MiB, [(0, 6 * MiB), (40 * MiB, 6 * MiB)])
    convert(tmp_path / "disk.raw", www / "disk.qcow2", "raw", "qcow2")
    with web_source(www, slow_bytes_per_second=RATE) as base:
        yield f"{base}/slow/disk.qcow2"


@pytest.fixture
def config(tmp_path: Path, postgres_url: str, broker_topology: Topology) -> Path:
    """Stores central, dcn0 and dcn1, where dcn1's directory can never be made (its parent is
    a file): every write to it fails."""
    path = write_config(tmp_path, postgres_url, broker_topology, stores=("central", "dcn0", "dcn1"))
    (tmp_path / "not-a-directory").write_text("")
    broken = tmp_path / "not-a-directory" / "dcn1"
    path.write_text(path.read_text().replace(str(tmp_path / "stores" / "dcn1"), str(broken)))
    return path


def imgworker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an operator's ``imgworker`` command against ``config``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER")}
    env["IMGWORKER_CONFIG"] = str(config)
    return subprocess.run(
        [IMGWORKER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def enqueue(config: Path, uri: str, stores: str, *options: str) -> tuple[str, str]:
    """``image-create`` then ``image-import``: the image and task ids."""
    created = imgworker(config, "image-create", "--disk-format", "qcow2", "--name", "watched")
    assert created.returncode == 0, created.stderr
    image_id = created.stdout.strip()
    imported = imgworker(
        config,
        "image-import",
        image_id,
        "--import-method", "web-download",
        "--uri", uri,
        "--stores", stores,
        *options,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    return image_id, imported.stdout.strip()


async def watch(postgres_url: str, task_id: str, timeout: float = 120) -> list[tuple[float, str]]:
    """Every message the task showed (polled every 0.1 s) and when, until it ended."""
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            row = await connection.fetchrow(
                "SELECT t.status, i.message FROM tasks t JOIN task_info i ON i.task_id = t.id "
                "WHERE t.id = $1",
                task_id,
            )
            assert row is not None
            if not seen or seen[-1][1] != (row["message"] or ""):
                seen.append((time.monotonic(), row["message"] or ""))
            if row["status"] in ("success", "failure"):
                return seen
            time.sleep(0.1)
    finally:
        await connection.close()
    raise AssertionError(f"task {task_id} did not end: {seen}")


async def test_progress_failures_and_logs_read_as_they_mean(
    tmp_path: Path, config: Path, postgres_url: str, source: str
) -> None:
    with running_workers(config, tmp_path, 1) as (worker,):
        _first_start_says_one_line_about_the_schema(worker)

        # 6. Progress: the phase and bytes of total, at a bounded rate; the store on its own.
        _image, task_id = enqueue(config, source, "central,dcn0")
        seen = await watch(postgres_url, task_id)
        messages = [message for _, message in seen]
        staging = [m for m in messages if m.startswith("staging: ")]
        assert staging and all(re.fullmatch(r"staging: \d+ of 12 MiB", m) for m in staging)
        assert messages[-1] == "imported to central, dcn0"
        assert not any("Copied" in m for m in messages)
        # Written at most every progress_seconds (2 s): never two changes closer than that,
        # but the final one.
        gaps = [b - a for (a, _), (b, _) in itertools.pairwise(seen[:-1])]
        assert all(gap > 1.5 for gap in gaps), seen

        # 5. Why a store failed, recorded with the task and shown by imgworker show.
        partly, _ = enqueue(config, source.replace("/slow/", "/"), "central,dcn1")
        await _ended(config, partly)
        shown = imgworker(config, "show", partly)
        assert shown.returncode == 0, shown.stderr
        last, reason = shown.stdout.splitlines()[-2:]
        assert re.fullmatch(r"last task: \S+ \(success\): imported to central; failed: .*", last)
        assert reason.startswith("  dcn1: ") and "not-a-directory" in reason
        failed, _ = enqueue(
            config, source.replace("/slow/", "/"), "central,dcn1", "--no-allow-failure"
        )
        assert not await _ended(config, failed)
        shown = imgworker(config, "show", failed)
        lines = shown.stdout.splitlines()
        assert re.search(r"^status\s+failed$", shown.stdout, re.MULTILINE), shown.stdout
        assert re.fullmatch(
            r"last task: \S+ \(failure\): store:dcn1: .*not-a-directory.*", lines[-2]
        )
        assert lines[-1].startswith("  dcn1: ") and "not-a-directory" in lines[-1]

        # 7. An image deleted mid-import: the expected revert is no error.
        doomed, doomed_task = enqueue(config, source, "central,dcn0")
        await _until_message(postgres_url, doomed_task, "staging: ")
        deleted = imgworker(config, "image-delete", doomed)
        assert deleted.returncode == 0, deleted.stderr
        await watch(postgres_url, doomed_task)
    # A clean SIGTERM (running_workers' exit) and everything before it: no error, no traceback,
    # no reconnection that did not happen.
    logged = worker.json_records()
    assert [r["message"] for r in logged if r["level"] in ("ERROR", "CRITICAL")] == []
    assert [r["message"] for r in logged if "exc" in r] == []
    assert not any("connection lost" in r["message"] for r in logged)
    assert worker.process.returncode == 0


def _first_start_says_one_line_about_the_schema(worker: Worker) -> None:
    logged = worker.json_records()
    assert not [r for r in logged if r["logger"].startswith("alembic")]
    upgraded = [r["message"] for r in logged if r["logger"] == "worker.db.schema"]
    assert upgraded == [f"database schema upgraded from (empty) to {SCHEMA_HEAD}"]


async def _ended(config: Path, image_id: str, timeout: float = 120) -> bool:
    """Wait until the image's tasks end (``imgworker tasks --wait``); whether the last one
    succeeded."""
    done = imgworker(config, "tasks", image_id, "--wait", "--timeout", str(timeout))
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


async def _until_message(postgres_url: str, task_id: str, prefix: str) -> None:
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = await connection.fetchval(
                "SELECT message FROM task_info WHERE task_id = $1", task_id
            )
            if (message or "").startswith(prefix):
                return
            time.sleep(0.1)
    finally:
        await connection.close()
    raise AssertionError(f"task {task_id} never showed {prefix!r}")
