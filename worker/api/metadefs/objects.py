"""``/v2/metadefs/namespaces/{namespace}/objects[/{object_name}]``."""

from __future__ import annotations

from aiohttp import web

from worker.api.bodies import read_json_object
from worker.api.common import json_response
from worker.api.metadefs.access import Namespaced, answering, catalog_of
from worker.api.metadefs.views import BASE, object_view
from worker.api.state import state_of
from worker.db.metadefs.definitions import check_writable, object_of
from worker.db.metadefs.items import Kind


@answering
async def list_objects(request: web.Request) -> web.Response:
    """The namespace's objects."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_objects")
    found = await catalog_of(request).items(at.name, at.viewer, Kind.OBJECT)
    return json_response(
        {
            "objects": [object_view(at.name, o) for o in found],
            "schema": "v2/schemas/metadefs/objects",
        }
    )


@answering
async def create_object(request: web.Request) -> web.Response:
    """A new object."""
    at = await Namespaced.of(request)
    at.enforce("add_metadef_object")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    added = await catalog_of(request).add(
        at.name, at.viewer, Kind.OBJECT, object_of(body), at.limit
    )
    return json_response(object_view(at.name, added), status=201)


@answering
async def show_object(request: web.Request) -> web.Response:
    """One object."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_object")
    found = await catalog_of(request).item(at.name, at.viewer, Kind.OBJECT, _name(request))
    return json_response(object_view(at.name, found))


@answering
async def update_object(request: web.Request) -> web.Response:
    """Replace an object (the body's ``name`` may rename it)."""
    at = await Namespaced.of(request)
    at.enforce("modify_metadef_object")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    changed = await catalog_of(request).change(
        at.name, at.viewer, Kind.OBJECT, _name(request), object_of(body)
    )
    return json_response(object_view(at.name, changed))


@answering
async def delete_object(request: web.Request) -> web.Response:
    """Delete an object (403 in a protected namespace)."""
    at = await Namespaced.of(request)
    at.enforce("delete_metadef_object")
    await catalog_of(request).remove(at.name, at.viewer, Kind.OBJECT, _name(request))
    return web.Response(status=204)


def _name(request: web.Request) -> str:
    return request.match_info["object_name"]


OBJECTS = f"{BASE}/{{namespace}}/objects"
ROUTES = [
    web.get(OBJECTS, list_objects),
    web.post(OBJECTS, create_object),
    web.get(f"{OBJECTS}/{{object_name}}", show_object),
    web.put(f"{OBJECTS}/{{object_name}}", update_object),
    web.delete(f"{OBJECTS}/{{object_name}}", delete_object),
]
