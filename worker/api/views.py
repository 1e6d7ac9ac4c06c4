"""Records as Glance's Image API shows them (the JSON bodies the clients parse)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flows.records import ImageRecord, TaskRecord
from flows.states import LocationStatus

#: Core attributes of an image body, in Glance's order.
CORE_ATTRIBUTES = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "id",
    "created_at",
    "updated_at",
    "tags",
)


def image_timestamp(moment: datetime | None) -> str | None:
    """Glance's image timestamps: UTC, whole seconds, ``Z``."""
    if moment is None:
        return None
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_timestamp(moment: datetime | None) -> str | None:
    """Glance's task timestamps: UTC, microseconds, no zone suffix."""
    if moment is None:
        return None
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def image_view(image: ImageRecord, *, show_locations: bool) -> dict[str, Any]:
    """The image body: extra properties first (as Glance), then core attributes and links."""
    body: dict[str, Any] = dict(image.properties)
    body.update(
        {
            "name": image.name,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "visibility": image.visibility,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "status": image.status,
            "checksum": image.checksum,
            "protected": image.protected,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "owner": image.owner,
            "os_hidden": image.os_hidden,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "id": image.id,
            "created_at": image_timestamp(image.created_at),
            "updated_at": image_timestamp(image.updated_at),
            "tags": list(image.tags),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    if image.stores:
        body["stores"] = ",".join(image.stores)
    if show_locations:
        body["locations"] = [
            {"url": location.url, "metadata": {"store": location.store}}
            for location in image.locations
            if location.status == LocationStatus.ACTIVE
        ]
    return body


def task_view(task: TaskRecord) -> dict[str, Any]:
    """The task body of ``GET /v2/tasks/{id}`` and ``GET /v2/images/{id}/tasks``."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner or "",
        "expires_at": task_timestamp(task.expires_at),
        "created_at": task_timestamp(task.created_at),
        "updated_at": task_timestamp(task.updated_at),
        "deleted_at": None,
        "deleted": False,
        "image_id": task.image_id or "",
        "request_id": task.request_id or "",
        "user_id": task.user_id or "",
        "input": task.input or {},
        "result": task.result,
        "message": task.message,
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
