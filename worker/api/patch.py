"""``PATCH /v2/images/{id}``: Glance's JSON-patch media types turned into :class:`ImageChanges`.

Two media types, as Glance accepts them:
``application/openstack-images-v2.1-json-patch`` (``{"op": "replace", "path": "/name",
"value": ...}``) and the older ``...-v2.0-json-patch`` (``{"replace": "/name", "value": ...}``).
Operations apply in order to a working copy of the image; the result is the set of changes
to write in one transaction. ``add`` sets (and overwrites) an attribute; ``replace`` and
``remove`` of an extra property that does not exist are conflicts; core attributes cannot
be removed; read-only and reserved attributes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows.records import ImageRecord
from flows.requester import RequestContext
from worker.api.attributes import (
    check_core,
    check_key,
    check_property,
    check_property_count,
    check_tags,
)
from worker.api.errors import bad_request, conflict, forbidden
from worker.config.settings import ApiSettings
from worker.db.catalog import MUTABLE_CORE, ImageChanges

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
PATCH_TYPES = (PATCH_V21, PATCH_V20)
OPERATIONS = ("add", "replace", "remove")


@dataclass(frozen=True, slots=True)
class Operation:
    """One patch operation on one top-level attribute."""

    op: str
    key: str
    value: Any = None


def parse_operations(body: Any, media: str) -> list[Operation]:
    """Check the patch document's shape; 400 naming what is wrong."""
    if not isinstance(body, list):
        raise bad_request("A JSON patch must be a list of operations.")
    return [_operation(item, media) for item in body]


def _operation(item: Any, media: str) -> Operation:
    if not isinstance(item, dict):
        raise bad_request("Each patch operation must be a JSON object.")
    if media == PATCH_V21:
        op, path = item.get("op"), item.get("path")
    else:
        found = [name for name in OPERATIONS if name in item]
        if len(found) != 1:
            raise bad_request(f"Each operation needs exactly one of {', '.join(OPERATIONS)}.")
        op, path = found[0], item[found[0]]
    if op not in OPERATIONS:
        raise bad_request(f"Unknown patch operation {op!r}; use add, replace or remove.")
    if op != "remove" and "value" not in item:
        raise bad_request(f"Operation {op!r} needs a 'value'.")
    return Operation(op, _key(path), item.get("value"))


def _key(path: Any) -> str:
    """A top-level JSON pointer (``/name``) as an attribute name."""
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise bad_request(f"Invalid patch path {path!r}: use /ATTRIBUTE.")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise forbidden(f"Invalid patch path {path!r}: only whole attributes can be changed.")
    return parts[0].replace("~1", "/").replace("~0", "~")


@dataclass
class _Working:
    core: dict[str, Any]
    properties: dict[str, str]
    tags: tuple[str, ...]
    removed: set[str] = field(default_factory=set)


def plan_changes(
    image: ImageRecord, operations: list[Operation], api: ApiSettings, identity: RequestContext
) -> ImageChanges:
    """Apply ``operations`` to a copy of ``image``; return what changed."""
    working = _Working(
        core={key: getattr(image, key) for key in MUTABLE_CORE},
        properties=dict(image.properties),
        tags=image.tags,
    )
    for operation in operations:
        _apply(working, operation, api, identity)
    user_properties = {
        k: v for k, v in working.properties.items() if not k.startswith("os_glance_")
    }
    if user_properties.keys() - image.properties.keys():  # Glance counts when some are new
        check_property_count(len(user_properties), api.image_property_quota)
    return ImageChanges(
        core={k: v for k, v in working.core.items() if v != getattr(image, k)},
        set_properties={k: v for k, v in user_properties.items() if image.properties.get(k) != v},
        remove_properties=tuple(sorted(k for k in working.removed if k not in working.properties)),
        tags=working.tags if working.tags != image.tags else None,
    )


def _apply(
    working: _Working, operation: Operation, api: ApiSettings, identity: RequestContext
) -> None:
    key, op = operation.key, operation.op
    check_key(key)
    if key == "id":
        raise forbidden("Attribute 'id' is read-only.")
    if key == "tags":
        if op == "remove":
            raise forbidden("Attribute 'tags' cannot be removed; replace it with [].")
        working.tags = check_tags(operation.value, api.image_tag_quota)
        return
    if key in MUTABLE_CORE:
        if op == "remove":
            raise forbidden(f"Attribute '{key}' cannot be removed.")
        working.core[key] = check_core(key, operation.value, api, identity)
        return
    if op == "add":
        working.properties[key] = check_property(key, operation.value)
        working.removed.discard(key)
        return
    if key not in working.properties:
        raise conflict(f"Property {key} does not exist.")
    if op == "replace":
        working.properties[key] = check_property(key, operation.value)
    else:
        del working.properties[key]
        working.removed.add(key)
