"""Reading a namespace definition: a ``POST /v2/metadefs/namespaces`` body, or one of Glance's
shipped ``etc/metadefs/*.json`` files (the same shape), checked as Glance's schema checks it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.db.metadefs.records import Association, Contents, Item, Namespace

VISIBILITIES = ("public", "private")
#: JSON schema types a property definition may have (Glance's enum, null aside).
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
#: What a property definition may say; other keys are dropped, as Glance's model drops them.
PROPERTY_KEYS = (
    "name", "title", "description", "operators", "type", "required", "minimum", "maximum",
    "maxLength", "minLength", "pattern", "enum", "readonly", "default", "items", "maxItems",
    "minItems", "uniqueItems", "additionalItems",
)  # fmt: skip
#: Attributes the server sets: a body that sends them is refused.
READ_ONLY = ("self", "schema", "created_at", "updated_at")


class InvalidDefinition(ValueError):
    """A definition that does not match the metadef schema: what and where."""


def namespace_of(body: Any, default_owner: str) -> tuple[Namespace, Contents]:
    """The namespace and contents ``body`` defines (owner: ``default_owner`` unless given)."""
    fields = _object(body, "the namespace")
    name = _text(fields, "namespace", 80, required=True)
    visibility = _text(fields, "visibility", 32) or "private"
    if visibility not in VISIBILITIES:
        raise InvalidDefinition(
            f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}"
        )
    namespace = Namespace(
        namespace=str(name),
        owner=_text(fields, "owner", 255) or default_owner,
        visibility=visibility,
        protected=_flag(fields, "protected"),
        display_name=_text(fields, "display_name", 80),
        description=_text(fields, "description", 500),
    )
    contents = Contents(
        objects=tuple(object_of(o) for o in _list(fields, "objects")),
        properties=tuple(property_of(n, d) for n, d in _dict(fields, "properties").items()),
        tags=tuple(tag_of(t) for t in _list(fields, "tags")),
        associations=tuple(association_of(a) for a in _list(fields, "resource_type_associations")),
    )
    return namespace, contents


def object_of(body: Any) -> Item:
    """An object: ``name``, ``description``, ``required`` and ``properties``."""
    fields = _object(body, "an object")
    name = str(_text(fields, "name", 80, required=True))
    required = _list(fields, "required")
    if not all(isinstance(r, str) for r in required):
        raise InvalidDefinition(f"object {name!r}: required must list property names")
    properties = {n: property_definition(n, d) for n, d in _dict(fields, "properties").items()}
    definition: dict[str, Any] = {"required": required, "properties": properties}
    description = _text(fields, "description", None)
    if description is not None:
        definition["description"] = description
    return Item(name, definition)


def property_of(name: Any, body: Any) -> Item:
    """A property definition named ``name`` (its ``name`` key, if any, must agree)."""
    if not isinstance(name, str) or not name or len(name) > 80:
        raise InvalidDefinition(f"property name {name!r} must be a string of 1 to 80 characters")
    return Item(name, property_definition(name, body))


def property_definition(name: str, body: Any) -> dict[str, Any]:
    """A property's JSON schema: ``title`` and ``type`` required, as Glance requires them."""
    fields = _object(body, f"property {name!r}")
    for key in ("title", "type"):
        if key not in fields:
            raise InvalidDefinition(f"property {name!r} needs a {key!r}")
    if fields["type"] not in PROPERTY_TYPES:
        raise InvalidDefinition(
            f"property {name!r}: type {fields['type']!r} is not one of {', '.join(PROPERTY_TYPES)}"
        )
    return {k: v for k, v in fields.items() if k in PROPERTY_KEYS and k != "name"}


def tag_of(body: Any) -> Item:
    """A tag: ``{"name": ...}``."""
    return Item(str(_text(_object(body, "a tag"), "name", 80, required=True)))


def association_of(body: Any) -> Association:
    """A resource type association: ``name``, optional ``prefix`` and ``properties_target``."""
    fields = _object(body, "a resource type association")
    return Association(
        name=str(_text(fields, "name", 80, required=True)),
        prefix=_text(fields, "prefix", 80),
        properties_target=_text(fields, "properties_target", 80),
    )


def check_writable(body: Mapping[str, Any]) -> None:
    """Refuse read-only attributes in a body (Glance answers 403 for them)."""
    for key in READ_ONLY:
        if key in body:
            raise PermissionError(f"Attribute '{key}' is read-only.")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidDefinition(f"{what} must be a JSON object")
    return value


def _text(
    fields: Mapping[str, Any], key: str, limit: int | None, required: bool = False
) -> str | None:
    value = fields.get(key)
    if value is None:
        if required:
            raise InvalidDefinition(f"{key!r} is required")
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidDefinition(f"{key!r} must be a non-empty string, not {value!r}")
    if limit is not None and len(value) > limit:
        raise InvalidDefinition(f"{key!r} is longer than {limit} characters")
    return value


def _flag(fields: Mapping[str, Any], key: str) -> bool:
    value = fields.get(key, False)
    if not isinstance(value, bool):
        raise InvalidDefinition(f"{key!r} must be true or false, not {value!r}")
    return value


def _list(fields: Mapping[str, Any], key: str) -> list[Any]:
    value = fields.get(key) or []
    if not isinstance(value, list):
        raise InvalidDefinition(f"{key!r} must be a list")
    return value


def _dict(fields: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = fields.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidDefinition(f"{key!r} must be an object mapping names to definitions")
    return value
