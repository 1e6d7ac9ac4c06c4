"""``DELETE /v2/stores/{store}/{image_id}``: remove an image's copy from one store (2.4)."""

from __future__ import annotations

import logging

from aiohttp import web

from worker.api.common import visible_image
from worker.api.errors import conflict
from worker.api.images import publish_delete
from worker.api.policy import enforce_on_image

log = logging.getLogger(__name__)


async def delete_from_store(request: web.Request) -> web.Response:
    """The location leaves the record at once; a worker removes the data (204)."""
    store = request.match_info["store"]
    state, identity, image = await visible_image(request)
    if store not in state.settings.stores.backends:
        raise conflict(f"The selected store {store} is not available on this node.")
    enforce_on_image(request, "get_image_location", image)
    enforce_on_image(request, "delete_image_location", image)
    task = await state.catalog.delete_from_store(image.id, store, identity)
    await publish_delete(state, identity, image, task.id, task.type)
    log.info("image %s: data in %s to be deleted by task %s", image.id, store, task.id)
    return web.Response(status=204)


ROUTES = [web.delete("/v2/stores/{store}/{image_id}", delete_from_store)]
