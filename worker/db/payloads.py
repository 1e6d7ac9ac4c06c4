"""The payloads of Glance's notifications, field for field (``glance/notifier.py``).

Built when an event is recorded, from the record as it is at that moment. Locations are
left out, as Glance leaves them out (they may carry credentials).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flows.events import Announcement, EventType, Priority, UploadFailure, UploadFailureKind
from flows.records import FAILED_IMPORT, IMPORTING_TO_STORES, ImageRecord, TaskRecord

Payload = dict[str, Any] | str


def isotime(moment: datetime | None) -> str:
    """oslo's ``timeutils.isotime``: UTC to the second, with ``Z``.

    Like Glance's, an unset time is formatted as the current time (a task's ``expires_at``
    before the task ends), so consumers always receive a timestamp.
    """
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_payload(image: ImageRecord, *, deleted_at: datetime | None = None) -> dict[str, Any]:
    """``format_image_notification``: the image's attributes, properties and tags."""
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility == "public",
        "visibility": image.visibility,
        "properties": dict(image.properties),
        "tags": list(image.tags),
        "deleted": deleted_at is not None,
        "deleted_at": isotime(deleted_at) if deleted_at is not None else None,
    }


def import_lists(image: ImageRecord) -> dict[str, list[str]]:
    """The two store lists as lists, added to ``image.prepare`` and ``image.upload``."""
    return {
        IMPORTING_TO_STORES: image.store_list(IMPORTING_TO_STORES),
        FAILED_IMPORT: image.store_list(FAILED_IMPORT),
    }


def upload_failure(image_id: str, failure: UploadFailure) -> str:
    """The payload of ``image.upload`` at ``error`` priority: a sentence, as Glance sends."""
    if failure.kind == UploadFailureKind.FULL:
        return f"Image storage media is full: {failure.detail}"
    if failure.kind == UploadFailureKind.DENIED:
        return f"Insufficient permissions on image storage media: {failure.detail}"
    return (
        f"Failed to upload image data for image {image_id} due to internal error: {failure.detail}"
    )


def announced(image: ImageRecord, announcement: Announcement) -> tuple[Priority, Payload]:
    """The priority and payload of an import's announcement about ``image``."""
    if announcement.failure is not None:
        return Priority.ERROR, upload_failure(image.id, announcement.failure)
    payload = image_payload(image)
    if announcement.event in (EventType.IMAGE_PREPARE, EventType.IMAGE_UPLOAD):
        payload.update(import_lists(image))
    if announcement.event == EventType.IMAGE_PREPARE and announcement.store:
        payload["backend"] = announcement.store
    return Priority.INFO, payload


def task_payload(task: TaskRecord) -> dict[str, Any]:
    """``format_task_notification``: never the input, result or message (they may hold
    secrets), as in Glance."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def send_payload(
    image: ImageRecord, bytes_sent: int, receiver_project: str | None, receiver_user: str | None
) -> dict[str, Any]:
    """``image.send``: who downloaded how much of whose image."""
    return {
        "bytes_sent": bytes_sent,
        "image_id": image.id,
        "owner_id": image.owner,
        "receiver_tenant_id": receiver_project,
        "receiver_user_id": receiver_user,
    }


def member_payload(
    image_id: str,
    member_id: str,
    status: str,
    created_at: datetime | None,
    updated_at: datetime | None,
    *,
    deleted_at: datetime | None = None,
) -> dict[str, Any]:
    """``format_image_member_notification``; a removal adds ``deleted`` and its time."""
    return {
        "image_id": image_id,
        "member_id": member_id,
        "status": status,
        "created_at": isotime(created_at),
        "updated_at": isotime(updated_at),
        "deleted": deleted_at is not None,
        "deleted_at": isotime(deleted_at) if deleted_at is not None else None,
    }
