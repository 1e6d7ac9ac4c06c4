"""``/v2/metadefs/namespaces/{namespace}/properties[/{property_name}]``."""

from __future__ import annotations

from aiohttp import web

from worker.api.bodies import read_json_object
from worker.api.common import json_response
from worker.api.metadefs.access import Namespaced, answering, catalog_of
from worker.api.metadefs.views import BASE, property_view
from worker.api.state import state_of
from worker.db.metadefs.definitions import check_writable, property_of
from worker.db.metadefs.items import Kind


@answering
async def list_properties(request: web.Request) -> web.Response:
    """The namespace's properties, by name."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_properties")
    found = await catalog_of(request).items(at.name, at.viewer, Kind.PROPERTY)
    return json_response({"properties": {p.name: p.definition for p in found}})


@answering
async def create_property(request: web.Request) -> web.Response:
    """A new property (``name``, ``title`` and ``type`` required)."""
    at = await Namespaced.of(request)
    at.enforce("add_metadef_property")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    new = property_of(body.get("name"), body)
    added = await catalog_of(request).add(at.name, at.viewer, Kind.PROPERTY, new, at.limit)
    return json_response(property_view(added), status=201)


@answering
async def show_property(request: web.Request) -> web.Response:
    """One property (a name with a resource type's prefix is found without it when
    ``?resource_type=X`` names that type)."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_property")
    catalog, name = catalog_of(request), _name(request)
    resource_type = request.query.get("resource_type")
    if resource_type:
        associations = await catalog.associations(at.name, at.viewer)
        prefix = next((a.prefix for a in associations if a.name == resource_type), None) or ""
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
    found = await catalog.item(at.name, at.viewer, Kind.PROPERTY, name)
    return json_response(property_view(found))


@answering
async def update_property(request: web.Request) -> web.Response:
    """Replace a property (the body's ``name`` may rename it)."""
    at = await Namespaced.of(request)
    at.enforce("modify_metadef_property")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    new = property_of(body.get("name"), body)
    changed = await catalog_of(request).change(
        at.name, at.viewer, Kind.PROPERTY, _name(request), new
    )
    return json_response(property_view(changed))


@answering
async def delete_property(request: web.Request) -> web.Response:
    """Delete a property (403 in a protected namespace)."""
    at = await Namespaced.of(request)
    at.enforce("remove_metadef_property")
    await catalog_of(request).remove(at.name, at.viewer, Kind.PROPERTY, _name(request))
    return web.Response(status=204)


def _name(request: web.Request) -> str:
    return request.match_info["property_name"]


PROPERTIES = f"{BASE}/{{namespace}}/properties"
ROUTES = [
    web.get(PROPERTIES, list_properties),
    web.post(PROPERTIES, create_property),
    web.get(f"{PROPERTIES}/{{property_name}}", show_property),
    web.put(f"{PROPERTIES}/{{property_name}}", update_property),
    web.delete(f"{PROPERTIES}/{{property_name}}", delete_property),
]
