"""Version discovery (``GET /``, ``/versions``) and the schemas (``/v2/schemas/...``)."""

from __future__ import annotations

from aiohttp import web

from worker.api.common import json_response
from worker.api.errors import not_found
from worker.api.schemas import all_schemas
from worker.api.state import state_of

#: The minor versions of the Image API v2 this service answers, as Glance 33 lists them
#: without its cache (2.16, the location API, is not offered).
CURRENT = "v2.17"
SUPPORTED = (
    "v2.15",
    "v2.13",
    "v2.12",
    "v2.11",
    "v2.10",
    "v2.9",
    "v2.8",
    "v2.7",
    "v2.6",
    "v2.5",
    "v2.4",
    "v2.3",
    "v2.2",
    "v2.1",
    "v2.0",
)


#: With the image cache on (``[cache] dir``), as Glance 33 with ``image_cache_dir``: 2.18
#: (the cache's nodes, clean and prune), 2.14 (the cache API) — still without 2.16.
CACHE_CURRENT = "v2.18"
CACHE_SUPPORTED = ("v2.17", "v2.15", "v2.14", *SUPPORTED[1:])


def _versions(request: web.Request) -> dict[str, list[dict[str, object]]]:
    settings = state_of(request).settings
    configured = settings.api.public_url.rstrip("/")
    base = configured or f"{request.scheme}://{request.host}"
    link = [{"rel": "self", "href": f"{base}/v2/"}]
    current, supported = (
        (CACHE_CURRENT, CACHE_SUPPORTED) if settings.cache.enabled else (CURRENT, SUPPORTED)
    )
    listed: list[dict[str, object]] = [
        {"id": v, "status": "SUPPORTED", "links": link} for v in supported
    ]
    listed.insert(0, {"id": current, "status": "CURRENT", "links": link})
    return {"versions": listed}


async def root(request: web.Request) -> web.Response:
    """``GET /``: the versions, with 300 Multiple Choices as Glance answers."""
    return json_response(_versions(request), status=300)


async def versions(request: web.Request) -> web.Response:
    """``GET /versions`` (and ``/v2``)."""
    return json_response(_versions(request))


async def schema(request: web.Request) -> web.Response:
    """``GET /v2/schemas/{name}``."""
    name = request.match_info["name"]
    schemas = all_schemas(state_of(request).settings.api)
    if name not in schemas:
        raise not_found(f"There is no schema {name}.")
    return json_response(schemas[name])


#: Paths answered without asking who calls (clients discover versions before they log in).
PUBLIC_PATHS = frozenset({"/", "/versions"})

ROUTES = [
    web.get("/", root),
    web.get("/versions", versions),
    web.get("/v2", versions),
    web.get("/v2/", versions),
    web.get("/v2/schemas/{name:.+}", schema),
]
