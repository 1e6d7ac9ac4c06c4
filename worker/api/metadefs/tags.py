"""``/v2/metadefs/namespaces/{namespace}/tags[/{tag_name}]``."""

from __future__ import annotations

from aiohttp import web

from worker.api.bodies import read_json_object
from worker.api.common import json_response
from worker.api.metadefs.access import Namespaced, answering, catalog_of
from worker.api.metadefs.views import BASE, tag_view
from worker.api.state import state_of
from worker.db.metadefs.definitions import InvalidDefinition, check_writable, tag_of
from worker.db.metadefs.items import Kind
from worker.db.metadefs.records import Item

#: ``true``: ``POST {ns}/tags`` adds its tags to the namespace's instead of replacing them.
APPEND_HEADER = "X-Openstack-Append"


@answering
async def list_tags(request: web.Request) -> web.Response:
    """The namespace's tags."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_tags")
    found = await catalog_of(request).items(at.name, at.viewer, Kind.TAG)
    return json_response({"tags": [tag_view(t) for t in found]})


@answering
async def create_tags(request: web.Request) -> web.Response:
    """``{"tags": [{"name": ...}, ...]}``: the namespace's tags become these (or, with
    ``X-Openstack-Append: true``, gain them)."""
    at = await Namespaced.of(request)
    at.enforce("add_metadef_tags")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    listed = body.get("tags")
    if not isinstance(listed, list):
        raise InvalidDefinition("'tags' must be a list of {\"name\": ...} objects")
    names = [tag_of(t).name for t in listed]
    append = request.headers.get(APPEND_HEADER, "false").lower() == "true"
    added = await catalog_of(request).set_tags(at.name, at.viewer, names, append, at.limit)
    return json_response({"tags": [{"name": t.name} for t in added]}, status=201)


@answering
async def create_tag(request: web.Request) -> web.Response:
    """``POST {ns}/tags/{tag}``: one new tag (no body)."""
    at = await Namespaced.of(request)
    at.enforce("add_metadef_tag")
    new = tag_of({"name": _name(request)})
    added = await catalog_of(request).add(at.name, at.viewer, Kind.TAG, new, at.limit)
    return json_response(tag_view(added), status=201)


@answering
async def show_tag(request: web.Request) -> web.Response:
    """One tag."""
    at = await Namespaced.of(request)
    at.enforce("get_metadef_tag")
    found = await catalog_of(request).item(at.name, at.viewer, Kind.TAG, _name(request))
    return json_response(tag_view(found))


@answering
async def update_tag(request: web.Request) -> web.Response:
    """``{"name": new}``: rename a tag."""
    at = await Namespaced.of(request)
    at.enforce("modify_metadef_tag")
    body = await read_json_object(request, state_of(request).settings.api.max_json_bytes)
    check_writable(body)
    new = Item(tag_of(body).name)
    changed = await catalog_of(request).change(at.name, at.viewer, Kind.TAG, _name(request), new)
    return json_response(tag_view(changed))


@answering
async def delete_tag(request: web.Request) -> web.Response:
    """Delete a tag (403 in a protected namespace)."""
    at = await Namespaced.of(request)
    at.enforce("delete_metadef_tag")
    await catalog_of(request).remove(at.name, at.viewer, Kind.TAG, _name(request))
    return web.Response(status=204)


def _name(request: web.Request) -> str:
    return request.match_info["tag_name"]


TAGS = f"{BASE}/{{namespace}}/tags"
ROUTES = [
    web.get(TAGS, list_tags),
    web.post(TAGS, create_tags),
    web.get(f"{TAGS}/{{tag_name}}", show_tag),
    web.post(f"{TAGS}/{{tag_name}}", create_tag),
    web.put(f"{TAGS}/{{tag_name}}", update_tag),
    web.delete(f"{TAGS}/{{tag_name}}", delete_tag),
]
