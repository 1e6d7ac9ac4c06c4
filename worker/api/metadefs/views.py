"""The metadef resources as Glance shows them: unset attributes left out, times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from worker.db.metadefs.records import Association, Contents, Item, Namespace

BASE = "/v2/metadefs/namespaces"


def stamp(moment: datetime | None) -> str | None:
    """Glance's time format: ``2014-09-19T18:20:56Z``."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def namespace_href(name: str) -> str:
    """The namespace's path."""
    return f"{BASE}/{quote(name, safe=':')}"


def _present(view: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in view.items() if value is not None}


def namespace_view(namespace: Namespace, contents: Contents | None = None) -> dict[str, Any]:
    """A namespace, with whichever of its contents are given and not empty."""
    view = _present(
        {
            "namespace": namespace.namespace,
            "display_name": namespace.display_name,
            "description": namespace.description,
            "visibility": namespace.visibility,
            "protected": namespace.protected,
            "owner": namespace.owner,
            "created_at": stamp(namespace.created_at),
            "updated_at": stamp(namespace.updated_at),
            "self": namespace_href(namespace.namespace),
            "schema": "/v2/schemas/metadefs/namespace",
        }
    )
    if contents is None:
        return view
    if contents.associations:
        view["resource_type_associations"] = [association_view(a) for a in contents.associations]
    if contents.properties:
        view["properties"] = {p.name: p.definition for p in contents.properties}
    if contents.objects:
        view["objects"] = [object_view(namespace.namespace, o) for o in contents.objects]
    if contents.tags:
        view["tags"] = [{"name": t.name} for t in contents.tags]
    return view


def object_view(namespace: str, item: Item) -> dict[str, Any]:
    """An object."""
    return _present(
        {
            "name": item.name,
            "description": item.definition.get("description"),
            "required": item.definition.get("required", []),
            "properties": item.definition.get("properties", {}),
            "created_at": stamp(item.created_at),
            "updated_at": stamp(item.updated_at),
            "self": f"{namespace_href(namespace)}/objects/{quote(item.name, safe=':')}",
            "schema": "/v2/schemas/metadefs/object",
        }
    )


def property_view(item: Item) -> dict[str, Any]:
    """A property definition, with its name."""
    return {"name": item.name, **item.definition}


def tag_view(item: Item) -> dict[str, Any]:
    """A tag."""
    return _present(
        {
            "name": item.name,
            "created_at": stamp(item.created_at),
            "updated_at": stamp(item.updated_at),
        }
    )


def association_view(association: Association) -> dict[str, Any]:
    """A resource type association (or a resource type: no prefix nor target)."""
    return _present(
        {
            "name": association.name,
            "prefix": association.prefix,
            "properties_target": association.properties_target,
            "created_at": stamp(association.created_at),
            "updated_at": stamp(association.updated_at),
        }
    )


def with_prefix(
    view: dict[str, Any], associations: tuple[Association, ...], resource_type: str
) -> dict[str, Any]:
    """``GET {ns}?resource_type=X``: property names as they apply to X (its prefix added)."""
    prefix = next((a.prefix for a in associations if a.name == resource_type), None)
    if not prefix:
        return view
    if "properties" in view:
        view["properties"] = {prefix + k: v for k, v in view["properties"].items()}
    for obj in view.get("objects", []):
        obj["properties"] = {prefix + k: v for k, v in obj["properties"].items()}
        obj["required"] = [prefix + name for name in obj["required"]]
    return view
