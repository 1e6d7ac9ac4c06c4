"""Structured logs: one JSON object per line, task ids bound once and carried everywhere."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from worker.daemon.logs import configure_logging, task_log_context


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Logging configured into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Each line of the buffer parsed as one JSON object (fails on any other line)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_is_one_json_object_per_line(output: io.StringIO) -> None:
    log = logging.getLogger("flows.steps.stage")
    log.info("staged %d bytes", 42, extra={"store": "central", "size": 42})
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        log.exception("write failed")
    first, second = records(output)
    assert first["level"] == "INFO"
    assert first["logger"] == "flows.steps.stage"
    assert first["message"] == "staged 42 bytes"
    assert first["store"] == "central" and first["size"] == 42
    assert first["ts"].endswith("+00:00")
    assert "task_id" not in first
    assert second["level"] == "ERROR"
    assert "RuntimeError: boom" in second["exc"]


def test_records_inside_the_context_carry_the_ids(output: io.StringIO) -> None:
    with task_log_context("task-1", "image-1", "req-1"):
        logging.getLogger("worker.tasks.runner").info("started")
        logging.getLogger("flows.engine").warning("step failed")
    logging.getLogger("worker.tasks.runner").info("idle")
    started, failed, idle = records(output)
    for inside in (started, failed):
        assert inside["task_id"] == "task-1"
        assert inside["image_id"] == "image-1"
        assert inside["request_id"] == "req-1"
    assert not {"task_id", "image_id", "request_id"} & idle.keys()


def test_missing_ids_are_left_out(output: io.StringIO) -> None:
    with task_log_context("task-2", None, None):
        logging.getLogger("worker").info("malformed message")
    (record,) = records(output)
    assert record["task_id"] == "task-2"
    assert "image_id" not in record and "request_id" not in record


async def test_tasks_and_threads_started_inside_inherit_the_ids(output: io.StringIO) -> None:
    log = logging.getLogger("flows.stores.file")

    async def heartbeat() -> None:
        log.info("heartbeat")

    async def one_task(number: int) -> None:
        with task_log_context(f"task-{number}", f"image-{number}", None):
            await asyncio.create_task(heartbeat())
            await asyncio.to_thread(log.info, "written in a thread")

    await asyncio.gather(one_task(1), one_task(2))
    by_message: dict[str, set[tuple[str, str]]] = {}
    for record in records(output):
        if record["logger"] != log.name:
            continue  # asyncio's own debug lines
        by_message.setdefault(record["message"], set()).add((record["task_id"], record["image_id"]))
    expected = {("task-1", "image-1"), ("task-2", "image-2")}
    assert by_message == {"heartbeat": expected, "written in a thread": expected}


def test_nested_contexts_restore_the_outer_ids(output: io.StringIO) -> None:
    log = logging.getLogger("worker")
    with task_log_context("outer", None, None):
        with task_log_context("inner", None, None):
            log.info("in")
        log.info("out")
    assert [r["task_id"] for r in records(output)] == ["inner", "outer"]


def test_text_lines_append_the_ids(output: io.StringIO) -> None:
    buffer = io.StringIO()
    configure_logging("INFO", json_lines=False, stream=buffer)
    with task_log_context("task-3", "image-3", None):
        logging.getLogger("worker").debug("hidden below INFO")
        logging.getLogger("worker").info("plain")
    (line,) = buffer.getvalue().splitlines()
    assert line.endswith("INFO worker: plain task_id=task-3 image_id=image-3")
    assert output.getvalue() == ""  # the second call replaced the first handler


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level 'LOUD' is unknown"):
        configure_logging("LOUD")
