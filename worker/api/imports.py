"""``POST /v2/images/{image_id}/import`` and the discovery calls clients make before it."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from flows.errors import SafetyRefusal, SourceUnavailable
from flows.request import COPY_IMAGE, WEB_DOWNLOAD, parse_import_request
from flows.stores.file import FileStoreConfig
from flows.targets import resolve_targets
from flows.uri_filter import vet_uri
from worker.api.bodies import read_json_object
from worker.api.common import json_response, visible_image
from worker.api.errors import bad_request
from worker.api.policy import enforce, enforce_on_image
from worker.api.state import ApiState, state_of
from worker.daemon.client import enqueue_import

log = logging.getLogger(__name__)

#: The header that names one target store (python-glanceclient's ``--store``).
STORE_HEADER = "X-Image-Meta-Store"


async def import_image(request: web.Request) -> web.Response:
    """Check the request as Glance does, take the image's lock, enqueue the task: 202."""
    state, identity, image = await visible_image(request)
    body = await read_json_object(request, state.settings.api.max_json_bytes)
    if "method" not in body:
        raise bad_request("Import request requires a 'method' field.")
    import_request = parse_import_request(_with_header_store(request, body))
    if import_request.method not in state.settings.import_.methods:
        raise bad_request(
            f"Import method {import_request.method} is not enabled on this cloud; enabled: "
            + ", ".join(state.settings.import_.methods)
        )
    # Glance: copy-image has a rule of its own; any other import changes the image.
    rule = "copy_image" if import_request.method == COPY_IMAGE else "modify_image"
    enforce_on_image(request, rule, image)
    rules = state.rules
    resolve_targets(import_request, image, rules.configured_stores, rules.default_store)
    if import_request.method == WEB_DOWNLOAD:
        await _vet_download(state, import_request.uri or "")
    task_id = await enqueue_import(
        state.records,
        state.rules,
        state.publisher,
        image_id=image.id,
        request=import_request,
        requester=state.import_requester(identity, image),
        admission=await state.quotas.for_import(identity.project_id, import_request, rules),
        without_worker=state.metrics.task_without_worker,
    )
    log.info(
        "task %s: %s of image %s enqueued",
        task_id,
        import_request.method,
        image.id,
        extra={"task_id": task_id, "image_id": image.id},
    )
    return web.Response(status=202)


def _with_header_store(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Glance's older way to name one store: the ``X-Image-Meta-Store`` header (``--store``)."""
    store = request.headers.get(STORE_HEADER)
    if store is None:
        return body
    if body.get("stores") or body.get("all_stores"):
        raise bad_request(
            f"Give the target stores either in the body or in {STORE_HEADER}, not both."
        )
    return {**body, "stores": [store]}


async def _vet_download(state: ApiState, uri: str) -> None:
    """Glance's import filtering, before any task exists."""
    try:
        await vet_uri(uri, state.settings.safety)
    except (SafetyRefusal, SourceUnavailable) as refusal:
        # The refusal names the URI (without credentials or query) and the setting.
        raise bad_request(f"URI for web-download does not pass filtering: {refusal}") from refusal


async def import_info(request: web.Request) -> web.Response:
    """``GET /v2/info/import``: the import methods this cloud offers."""
    methods = list(state_of(request).settings.import_.methods)
    return json_response(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": methods,
            }
        }
    )


async def stores_info(request: web.Request) -> web.Response:
    """``GET /v2/info/stores``: the stores, the default one marked."""
    stores = state_of(request).settings.stores
    listed: list[dict[str, Any]] = []
    for name in stores.backends:
        entry: dict[str, Any] = {"id": name}
        if name == stores.default:
            entry["default"] = "true"
        listed.append(entry)
    return json_response({"stores": listed})


async def stores_detail(request: web.Request) -> web.Response:
    """``GET /v2/info/stores/detail`` (admins): each store's type and settings, no secrets."""
    enforce(request, "stores_info_detail")
    stores = state_of(request).settings.stores
    listed = []
    for name, config in stores.backends.items():
        entry: dict[str, Any] = {"id": name, "type": config.type, "weight": 0}
        if name == stores.default:
            entry["default"] = "true"
        if isinstance(config, FileStoreConfig):
            entry["properties"] = {
                "data_dir": config.path,
                "chunk_size": config.chunk_size,
                "thin_provisioning": True,
            }
        else:
            entry["properties"] = {
                "pool": config.pool,
                "chunk_size": config.chunk_size,
                "thin_provisioning": config.thin_provisioning,
            }
        listed.append(entry)
    return json_response({"stores": listed})


ROUTES = [
    web.post("/v2/images/{image_id}/import", import_image),
    web.get("/v2/info/import", import_info),
    web.get("/v2/info/stores", stores_info),
    web.get("/v2/info/stores/detail", stores_detail),
]
