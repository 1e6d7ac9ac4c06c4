"""Checking image attributes a caller sends (create and update), as Glance's schema does.

Core attributes have types and enums; ``status``, sizes, hashes and timestamps are read-only;
``os_glance_*`` and a few names are reserved for the service; every other key is an extra
property whose value must be a string.
"""

from __future__ import annotations

from typing import Any

from flows.requester import RequestContext
from worker.api.errors import ApiError, bad_request, forbidden
from worker.api.schemas import VISIBILITIES
from worker.config.settings import ApiSettings

#: Attributes only the service writes.
READ_ONLY = frozenset(
    {
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "stores",
    }
)
#: Names no caller may use; plus every ``os_glance_*`` property.
RESERVED = frozenset({"deleted", "deleted_at", "location", "locations"})
RESERVED_PREFIX = "os_glance_"
MAX_PROPERTY_VALUE = 65535


def check_key(key: str) -> None:
    """403 for read-only and reserved attribute names."""
    if key.startswith(RESERVED_PREFIX) or key in RESERVED:
        raise forbidden(f"Attribute '{key}' is reserved.")
    if key in READ_ONLY:
        raise forbidden(f"Attribute '{key}' is read-only.")


def check_core(key: str, value: Any, api: ApiSettings, identity: RequestContext) -> Any:
    """The checked value of core attribute ``key``; 400/403 saying what is wrong."""
    if key == "name":
        return _optional_text(key, value, 255)
    if key == "visibility":
        if value not in VISIBILITIES:
            raise bad_request(
                f"Invalid visibility {value!r}; use one of {', '.join(VISIBILITIES)}."
            )
        return value
    if key in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise bad_request(f"{key} must be true or false, not {value!r}.")
        return value
    if key in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_request(f"{key} must be a whole number of at least 0, not {value!r}.")
        return value
    if key == "disk_format":
        return _format(key, value, api.disk_formats)
    if key == "container_format":
        return _format(key, value, api.container_formats)
    if key == "owner":
        owner = _optional_text(key, value, 255)
        if owner != identity.project_id and not identity.is_admin:
            raise forbidden("You are not authorized to give an image to another project.")
        return owner
    raise AssertionError(f"{key} is not a core attribute")


def check_tags(value: Any, limit: int) -> tuple[str, ...]:
    """A list of distinct strings of at most 255 characters, at most ``limit`` of them
    (``[api] image_tag_quota``; -1: no limit)."""
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise bad_request("tags must be a list of strings.")
    for tag in value:
        if len(tag) > 255:
            raise bad_request(f"Tag {tag[:40]!r}... is longer than 255 characters.")
    tags = tuple(dict.fromkeys(value))
    if 0 <= limit < len(tags):
        raise _over_limit("tags", len(tags), limit)
    return tags


def check_property(key: str, value: Any) -> str:
    """An extra property's value: a string (Glance's ``additionalProperties``)."""
    check_key(key)
    if not key or len(key) > 255:
        raise bad_request("Property names must have 1 to 255 characters.")
    if not isinstance(value, str):
        raise bad_request(
            f"Provided object does not match schema 'image': {value!r} is not of type 'string' "
            f"(property {key!r}: extra properties are strings)."
        )
    if len(value) > MAX_PROPERTY_VALUE:
        raise bad_request(f"Property {key!r} is longer than {MAX_PROPERTY_VALUE} characters.")
    return value


def check_property_count(count: int, limit: int) -> None:
    """413 past ``[api] image_property_quota`` (-1: no limit)."""
    if 0 <= limit < count:
        raise _over_limit("properties", count, limit)


def _over_limit(what: str, attempted: int, maximum: int) -> ApiError:
    """Glance's ``ImageTagLimitExceeded`` / ``ImagePropertyLimitExceeded``."""
    return ApiError(
        413,
        f"The limit has been exceeded on the number of allowed image {what}. "
        f"Attempted: {attempted}, Maximum: {maximum}",
    )


def _optional_text(key: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string or null, not {value!r}.")
    if len(value) > limit:
        raise bad_request(f"{key} is longer than {limit} characters.")
    return value


def _format(key: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise bad_request(
            f"Invalid {key.replace('_', ' ')} {value!r} for this cloud; allowed: "
            + ", ".join(allowed)
        )
    return str(value)
