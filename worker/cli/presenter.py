"""How images and tasks are shown: the fields of ``glance image-show`` that matter here."""

from __future__ import annotations

import json
from typing import Any

from flows.records import (
    FAILED_IMPORT,
    IMPORTING_TO_STORES,
    STORE_FAILURES,
    ImageRecord,
    TaskRecord,
)
from flows.states import ImageStatus, LocationStatus, TaskType

#: The ``imgworker show`` fields, in display order (``--json`` uses exactly these keys).
IMAGE_FIELDS = (
    "id",
    "name",
    "status",
    "stores",
    IMPORTING_TO_STORES,
    FAILED_IMPORT,
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "disk_format",
    "container_format",
    "locations",
)


def image_fields(image: ImageRecord) -> dict[str, Any]:
    """The image as ``glance image-show`` would show these fields."""
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "stores": ",".join(image.stores),
        IMPORTING_TO_STORES: image.properties.get(IMPORTING_TO_STORES, ""),
        FAILED_IMPORT: image.properties.get(FAILED_IMPORT, ""),
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "locations": [
            {"url": loc.url, "metadata": {"store": loc.store}}
            for loc in image.locations
            if loc.status == LocationStatus.ACTIVE
        ],
    }


def render_table(fields: dict[str, Any]) -> str:
    """A two-column field/value table."""
    width = max(len(name) for name in fields)
    lines = []
    for name, value in fields.items():
        if isinstance(value, list):
            shown = "\n".join(" " * (width + 2) + json.dumps(item) for item in value).lstrip()
        else:
            shown = "" if value is None else str(value)
        lines.append(f"{name.ljust(width)}  {shown}")
    return "\n".join(lines)


def task_fields(task: TaskRecord) -> dict[str, Any]:
    """The fields of ``glance task-show``."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "image_id": task.image_id,
        "message": task.message,
        "input": task.input,
        "result": task.result,
        "owner": task.owner,
        "request_id": task.request_id,
        "claimed_by": task.claimed_by,
    }


def render_grid(headers: list[str], rows: list[list[str]]) -> str:
    """A boxed table, as ``glance-cache-manage`` (prettytable) prints one."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([rule, line(headers), rule, *(line(row) for row in rows), rule])


def failure_lines(image: ImageRecord, tasks: list[TaskRecord]) -> list[str]:
    """Why ``image`` failed, or why some of its stores did: its last import task's message
    and each failed store's reason, as that task recorded them (empty when nothing failed)."""
    failed_stores = [s for s in image.properties.get(FAILED_IMPORT, "").split(",") if s]
    if image.status != ImageStatus.FAILED and not failed_stores:
        return []
    imports = [task for task in tasks if task.type == TaskType.IMPORT]
    if not imports:
        return []
    last = imports[-1]
    lines = [f"last task: {last.id} ({last.status}): {last.message or '(no message)'}"]
    recorded = (last.result or {}).get(STORE_FAILURES)
    reasons: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    for store in failed_stores or list(reasons):
        lines.append(f"  {store}: {reasons.get(store, 'see the task message')}")
    return lines


def task_line(task: TaskRecord) -> str:
    """One task on one line: id, type, status, when it last changed, and its message."""
    changed = task.updated_at.strftime("%Y-%m-%d %H:%M:%S") if task.updated_at else ""
    return f"{task.id}  {task.type:16s}  {task.status:10s}  {changed}  {task.message}"
