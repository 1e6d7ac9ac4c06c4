"""The JSON schemas the clients download (``GET /v2/schemas/...``).

python-glanceclient builds its image model from ``/v2/schemas/image`` and validates every
image it receives against it, so the schema describes exactly what :mod:`worker.api.views`
returns — including imgworker's ``failed`` status — and, as Glance's does, lets any other
property through as a string. The format enums are the configured ones, so the client refuses
a format the server would refuse.
"""

from __future__ import annotations

from typing import Any

from flows.states import ImageStatus, MemberStatus, TaskStatus, TaskType
from worker.api.metadefs.schemas import metadef_schemas
from worker.config.settings import ApiSettings

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
VISIBILITIES = ("community", "public", "private", "shared")


def _nullable(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": ["null", kind], "description": description, **extra}


def _read_only(kind: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


def image_properties(api: ApiSettings) -> dict[str, Any]:
    """The ``properties`` of the image schema."""
    return {
        "id": {"type": "string", "description": "The image's UUID.", "pattern": UUID_PATTERN},
        "name": _nullable("string", "A name people recognise the image by.", maxLength=255),
        "status": _read_only(
            "string", "Where the image is in its life.", enum=[s.value for s in ImageStatus]
        ),
        "visibility": {
            "type": "string",
            "description": "Who may see and use the image.",
            "enum": list(VISIBILITIES),
        },
        "protected": {"type": "boolean", "description": "A protected image cannot be deleted."},
        "os_hidden": {
            "type": "boolean",
            "description": "Hidden images are left out of default image lists.",
        },
        "checksum": _read_only(["null", "string"], "MD5 of the stored data.", maxLength=32),
        "os_hash_algo": _read_only(
            ["null", "string"], "The algorithm of os_hash_value.", maxLength=64
        ),
        "os_hash_value": _read_only(
            ["null", "string"], "Hex digest of the stored data by os_hash_algo.", maxLength=128
        ),
        "owner": _nullable("string", "The project that owns the image.", maxLength=255),
        "size": _read_only(["null", "integer"], "Bytes of the stored data."),
        "virtual_size": _read_only(["null", "integer"], "Bytes of the disk the image holds."),
        "container_format": _nullable(
            "string",
            "The container the disk image comes in.",
            enum=[None, *api.container_formats],
        ),
        "disk_format": _nullable(
            "string", "The format of the disk image.", enum=[None, *api.disk_formats]
        ),
        "created_at": _read_only("string", "When the image was recorded."),
        "updated_at": _read_only("string", "When the image record last changed."),
        "tags": {
            "type": "array",
            "description": "Free-form labels.",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": _read_only("string", "Where the data is, for services that read it."),
        "min_ram": {"type": "integer", "description": "MiB of RAM needed to boot the image."},
        "min_disk": {"type": "integer", "description": "GiB of disk needed to boot the image."},
        "self": _read_only("string", "This image's URL."),
        "file": _read_only("string", "The URL of the image's data."),
        "stores": _read_only("string", "Comma-separated stores holding the image's data."),
        "schema": _read_only("string", "The URL of this schema."),
        "locations": {
            "type": "array",
            "description": "Where copies of the data are, and in which store.",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                },
                "required": ["url", "metadata"],
            },
        },
    }


IMAGE_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]


def image_schema(api: ApiSettings) -> dict[str, Any]:
    """``GET /v2/schemas/image``."""
    return {
        "name": "image",
        "properties": image_properties(api),
        "additionalProperties": {"type": "string"},
        "links": IMAGE_LINKS,
    }


def _collection(name: str, item: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
            **extra,
        },
        "links": [
            *(
                [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}]
                if "first" in extra
                else []
            ),
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema(api: ApiSettings) -> dict[str, Any]:
    """``GET /v2/schemas/images``."""
    return _collection(
        "images",
        image_schema(api),
        {"first": {"type": "string"}, "next": {"type": "string"}},
    )


def task_properties() -> dict[str, Any]:
    """The ``properties`` of the task schema."""
    text = {"type": "string"}
    return {
        "id": {"type": "string", "description": "The task's UUID.", "pattern": UUID_PATTERN},
        "type": {
            "type": "string",
            "description": "What the task does.",
            "enum": ["import", "location_import", *(t.value for t in TaskType)],
        },
        "status": {
            "type": "string",
            "description": "Where the task is.",
            "enum": [s.value for s in TaskStatus],
        },
        "input": {"type": ["null", "object"], "description": "What the task was asked."},
        "result": {"type": ["null", "object"], "description": "What the task produced."},
        "owner": {**text, "description": "The project that asked for the task."},
        "message": {**text, "description": "Progress, or why the task failed."},
        "image_id": {**text, "description": "The image the task works on."},
        "request_id": {**text, "description": "The request that created the task."},
        "user_id": {**text, "description": "The user that asked for the task."},
        "expires_at": {"type": ["null", "string"], "description": "When the task is forgotten."},
        "created_at": {**text, "description": "When the task was created."},
        "updated_at": {**text, "description": "When the task last changed."},
        "self": {**text, "readOnly": True},
        "schema": {**text, "readOnly": True},
    }


def task_schema() -> dict[str, Any]:
    """``GET /v2/schemas/task``."""
    return {"name": "task", "properties": task_properties()}


def tasks_schema() -> dict[str, Any]:
    """``GET /v2/schemas/tasks``."""
    return _collection("tasks", task_schema(), {})


def member_schema() -> dict[str, Any]:
    """``GET /v2/schemas/member``."""
    return {
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "The project shared with."},
            "image_id": {"type": "string", "pattern": UUID_PATTERN},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in MemberStatus]},
            "schema": {"type": "string", "readOnly": True},
        },
    }


def members_schema() -> dict[str, Any]:
    """``GET /v2/schemas/members``."""
    return _collection("members", member_schema(), {})


def all_schemas(api: ApiSettings) -> dict[str, dict[str, Any]]:
    """Every schema by its path under ``/v2/schemas/``."""
    return {
        "image": image_schema(api),
        "images": images_schema(api),
        "task": task_schema(),
        "tasks": tasks_schema(),
        "member": member_schema(),
        "members": members_schema(),
        **metadef_schemas(),
    }
