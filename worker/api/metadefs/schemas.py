"""The metadef JSON schemas (``/v2/schemas/metadefs/...``), shaped as Glance's: clients
build their models from them and validate what the API answers against them."""

from __future__ import annotations

from typing import Any

_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
_DEFINITIONS: dict[str, Any] = {
    "positiveInteger": {"type": "integer", "minimum": 0},
    "positiveIntegerDefault0": {
        "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
    },
    "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
}
#: What a property definition may say (anything else is dropped, as Glance drops it).
PROPERTY_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 255},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": _TYPES},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": _TYPES}, "enum": {"type": "array"}},
    },
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}
_PROPERTY_MAP = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["title", "type"],
        "properties": PROPERTY_FIELDS,
    },
}
_LINKS = [
    {"rel": "first", "href": "{first}"},
    {"rel": "next", "href": "{next}"},
    {"rel": "describedby", "href": "{schema}"},
]


def _stamps(what: str) -> dict[str, Any]:
    return {
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": f"When the {what} was created",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": f"When the {what} last changed",
            "format": "date-time",
        },
    }


def _links() -> dict[str, Any]:
    return {
        "self": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    }


def _one(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": properties,
        "additionalProperties": False,
        "required": required,
        "definitions": _definitions(),
    }


def _definitions(with_property: bool = True) -> dict[str, Any]:
    found = dict(_DEFINITIONS)
    if with_property:
        found["property"] = _PROPERTY_MAP
    return found


def _many(name: str, key: str, one: dict[str, Any], kind: str = "array") -> dict[str, Any]:
    item = {k: v for k, v in one.items() if k != "definitions"}
    listed: dict[str, Any] = (
        {"type": "array", "items": item}
        if kind == "array"
        else {"type": "object", "additionalProperties": item}
    )
    return {
        "name": name,
        "properties": {
            key: listed,
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": _LINKS,
        "definitions": one.get("definitions", _definitions()),
    }


def association_schema() -> dict[str, Any]:
    """``resource_type``: a namespace's association with a resource type."""
    text = {"type": "string", "maxLength": 80}
    properties = {
        "name": {**text, "description": "The resource type, named as Heat names it"},
        "prefix": {**text, "description": "Prefix of the namespace's properties on it"},
        "properties_target": {**text, "description": "Which of its metadata they go to"},
        **_stamps("association"),
    }
    return {
        "name": "resource_type_association",
        "properties": properties,
        "additionalProperties": False,
        "required": ["name"],
    }


def tag_schema() -> dict[str, Any]:
    """``tag``."""
    properties = {"name": {"type": "string", "maxLength": 255}, **_stamps("tag")}
    return {
        "name": "tag",
        "properties": properties,
        "additionalProperties": False,
        "required": ["name"],
    }


def object_schema() -> dict[str, Any]:
    """``object``: a group of property definitions."""
    properties = {
        "name": {"type": "string", "maxLength": 255},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        **_stamps("object"),
        **_links(),
    }
    return _one("object", properties, ["name"])


def property_schema() -> dict[str, Any]:
    """``property``: one property definition."""
    schema = _one("property", dict(PROPERTY_FIELDS), ["type", "title", "name"])
    schema["definitions"] = _definitions(with_property=False)
    return schema


def namespace_schema() -> dict[str, Any]:
    """``namespace``: a namespace and, when shown, its contents."""
    association = {k: v for k, v in association_schema().items() if k in ("properties",)}
    properties = {
        "namespace": {"type": "string", "maxLength": 80, "description": "The namespace's name"},
        "display_name": {"type": "string", "maxLength": 80, "description": "A name for people"},
        "description": {"type": "string", "maxLength": 500, "description": "What it is for"},
        "visibility": {
            "type": "string",
            "enum": ["public", "private"],
            "description": "Who sees it",
        },
        "protected": {"type": "boolean", "description": "If true, it cannot be deleted"},
        "owner": {"type": "string", "maxLength": 255, "description": "The owning project"},
        **_stamps("namespace"),
        **_links(),
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    k: {"type": "string"}
                    for k in association["properties"]
                    if not k.endswith("_at")
                },
            },
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
    return _one("namespace", properties, ["namespace"])


def metadef_schemas() -> dict[str, dict[str, Any]]:
    """Every metadef schema by its path under ``/v2/schemas/``."""
    namespace, obj, prop = namespace_schema(), object_schema(), property_schema()
    association, tag = association_schema(), tag_schema()
    properties = _many("properties", "properties", prop, kind="object")
    return {
        "metadefs/namespace": namespace,
        "metadefs/namespaces": _many("namespaces", "namespaces", namespace),
        "metadefs/object": obj,
        "metadefs/objects": _many("objects", "objects", obj),
        "metadefs/property": prop,
        "metadefs/properties": properties,
        "metadefs/tag": tag,
        "metadefs/tags": _many("tags", "tags", tag),
        "metadefs/resource_type": association,
        "metadefs/resource_types": _many(
            "resource_type_associations", "resource_type_associations", association
        ),
    }
