"""The metadata definitions API (``/v2/metadefs``): namespaces, objects, properties, tags
and resource types, under Glance's metadef rules (the guide's 1.1.7)."""

from __future__ import annotations

from aiohttp import web

from worker.api.metadefs import namespaces, objects, properties, resource_types, tags

ROUTES: list[web.RouteDef] = [
    *namespaces.ROUTES,
    *objects.ROUTES,
    *properties.ROUTES,
    *tags.ROUTES,
    *resource_types.ROUTES,
]
