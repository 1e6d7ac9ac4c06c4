"""``/v2/metadefs/resource_types`` and a namespace's ``resource_types`` associations."""

from __future__ import annotations

from aiohttp import web

from worker.api.bodies import read_json_object
from worker.api.common import json_response
from worker.api.metadefs.access import Namespaced, answering, catalog_of, enforce_on_collection
from worker.api.metadefs.views import BASE, association_view
from worker.api.state import state_of
from worker.db.metadefs.definitions import association_of, check_writable


@answering
async def list_resource_types(request: web.Request) -> web.Response:
    """Every resource type."""
    enforce_on_collection(request, "list_metadef_resource_types")
    found = await catalog_of(request).resource_types()
    return json_response({"resource_types": [association_view(t) for t in found]})


@answering
async def list_associations(request: web.Request) -> web.Response:
    """The namespace's resource type associations."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_resource_type")
    found = await catalog_of(request).associations(at.name, at.viewer)
    return json_response({"resource_type_associations": [association_view(a) for a in found]})


@answering
async def associate(request: web.Request) -> web.Response:
    """Associate a resource type (an unknown one is created)."""
    at = await Namespaced.of(request)
    at.enforce("add_metadef_resource_type_association")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    added = await catalog_of(request).associate(at.name, at.viewer, association_of(body), at.limit)
    return json_response(association_view(added), status=201)


@answering
async def deassociate(request: web.Request) -> web.Response:
    """Remove an association (403 in a protected namespace)."""
    at = await Namespaced.of(request)
    at.enforce("remove_metadef_resource_type_association")
    name = request.match_info["resource_type"]
    await catalog_of(request).deassociate(at.name, at.viewer, name)
    return web.Response(status=204)


ASSOCIATIONS = f"{BASE}/{{namespace}}/resource_types"
ROUTES = [
    web.get("/v2/metadefs/resource_types", list_resource_types),
    web.get(ASSOCIATIONS, list_associations),
    web.post(ASSOCIATIONS, associate),
    web.delete(f"{ASSOCIATIONS}/{{resource_type}}", deassociate),
]
