"""``/v2/metadefs/namespaces`` and ``/v2/metadefs/namespaces/{namespace}``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from worker.api.bodies import read_json_object
from worker.api.common import json_response
from worker.api.errors import bad_request
from worker.api.identity import identity_of
from worker.api.metadefs.access import (
    Namespaced,
    answering,
    catalog_of,
    enforce_on_collection,
    limit_of,
    own_owner,
    target_of,
    viewer_of,
)
from worker.api.metadefs.views import (
    BASE,
    association_view,
    namespace_href,
    namespace_view,
    with_prefix,
)
from worker.api.policy import allowed
from worker.api.state import state_of
from worker.db.metadefs.definitions import VISIBILITIES, check_writable, namespace_of
from worker.db.metadefs.items import Kind
from worker.db.metadefs.namespaces import SORT_KEYS, NamespaceQuery


@answering
async def list_namespaces(request: web.Request) -> web.Response:
    """One page of the namespaces the caller may see, each with its associations."""
    enforce_on_collection(request, "get_metadef_namespaces", "list_metadef_resource_types")
    query = _query(request)
    found = await catalog_of(request).namespaces(viewer_of(request), query)
    listed = [
        namespace_view(ns, None) | ({"resource_type_associations": _associations(a)} if a else {})
        for ns, a in found
        if allowed(request, "get_metadef_namespace", target_of(ns))
    ]
    params = {k: v for k, v in request.query.items() if k != "marker"}
    body: dict[str, Any] = {
        "namespaces": listed,
        "first": f"{BASE}?{urlencode(params)}" if params else BASE,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if found and len(found) == query.limit:
        body["next"] = f"{BASE}?{urlencode({**params, 'marker': found[-1][0].namespace})}"
    return json_response(body)


def _associations(found: list[Any]) -> list[dict[str, Any]]:
    return [association_view(a) for a in found]


def _query(request: web.Request) -> NamespaceQuery:
    api = state_of(request).settings.api
    query = request.query
    try:
        limit = int(query.get("limit", api.default_page_size))
    except ValueError:
        raise bad_request("limit param must be an integer") from None
    if limit < 0:
        raise bad_request("limit param must be positive")
    sort_key, sort_dir = query.get("sort_key", "created_at"), query.get("sort_dir", "desc")
    if sort_key not in SORT_KEYS:
        raise bad_request(f"Invalid sort key: {sort_key}; use one of {', '.join(SORT_KEYS)}")
    if sort_dir not in ("asc", "desc"):
        raise bad_request(f"Invalid sort direction: {sort_dir}")
    visibility = query.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise bad_request(f"Invalid visibility value: {visibility}")
    types = tuple(t for t in query.get("resource_types", "").split(",") if t)
    return NamespaceQuery(
        min(limit, api.max_page_size), query.get("marker"), sort_key, sort_dir, visibility, types
    )


@answering
async def create_namespace(request: web.Request) -> web.Response:
    """A new namespace, with the contents the body gives (each kind its own rule)."""
    state, caller = state_of(request), identity_of(request)
    body = await read_json_object(request, state.settings.api.max_json_bytes)
    check_writable(body)
    namespace, contents = namespace_of(body, caller.project_id or "")
    rules = ["add_metadef_namespace"]
    rules += ["add_metadef_resource_type_association"] if contents.associations else []
    rules += ["add_metadef_object"] if contents.objects else []
    rules += ["add_metadef_property"] if contents.properties else []
    rules += ["add_metadef_tag"] if contents.tags else []
    enforce_on_collection(request, *rules)
    own_owner(request, namespace.owner)
    catalog = catalog_of(request)
    await catalog.create(namespace, contents, limit_of(request, state))
    created = await catalog.namespace(namespace.namespace, viewer_of(request))
    return json_response(
        namespace_view(created, await catalog.contents(namespace.namespace, viewer_of(request))),
        status=201,
        headers={"Location": namespace_href(namespace.namespace)},
    )


@answering
async def show_namespace(request: web.Request) -> web.Response:
    """A namespace and everything it defines (``?resource_type=X``: names prefixed for X)."""
    at = await Namespaced.of(request)
    at.enforce(
        "get_metadef_namespace",
        "list_metadef_resource_types",
        "get_metadef_objects",
        "get_metadef_properties",
        "get_metadef_tags",
    )
    contents = await catalog_of(request).contents(at.name, at.viewer)
    view = namespace_view(at.namespace, contents)
    resource_type = request.query.get("resource_type")
    if resource_type:
        view = with_prefix(view, contents.associations, resource_type)
    return json_response(view)


@answering
async def update_namespace(request: web.Request) -> web.Response:
    """Replace a namespace's attributes (what the body leaves out takes its default)."""
    at = await Namespaced.of(request)
    at.enforce("modify_metadef_namespace")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    new, _contents = namespace_of(body, identity_of(request).project_id or "")
    own_owner(request, new.owner)
    updated = await catalog_of(request).update(at.name, at.viewer, new)
    return json_response(namespace_view(updated))


@answering
async def delete_namespace(request: web.Request) -> web.Response:
    """Delete a namespace and its contents (403 when protected)."""
    at = await Namespaced.of(request)
    at.enforce("delete_metadef_namespace")
    await catalog_of(request).delete(at.name, at.viewer)
    return web.Response(status=204)


def _clearing(kind: Kind, *rules: str) -> Any:
    @answering
    async def clear(request: web.Request) -> web.Response:
        at = await Namespaced.of(request)
        at.enforce(*rules)
        await catalog_of(request).clear(at.name, at.viewer, kind)
        return web.Response(status=204)

    clear.__doc__ = f"Delete every {kind.value} of an unprotected namespace."
    return clear


NAMESPACE = f"{BASE}/{{namespace}}"
ROUTES = [
    web.get(BASE, list_namespaces),
    web.post(BASE, create_namespace),
    web.get(NAMESPACE, show_namespace),
    web.put(NAMESPACE, update_namespace),
    web.delete(NAMESPACE, delete_namespace),
    web.delete(f"{NAMESPACE}/objects", _clearing(Kind.OBJECT, "delete_metadef_namespace")),
    web.delete(f"{NAMESPACE}/properties", _clearing(Kind.PROPERTY, "delete_metadef_namespace")),
    web.delete(
        f"{NAMESPACE}/tags", _clearing(Kind.TAG, "delete_metadef_namespace", "delete_metadef_tags")
    ),
]
