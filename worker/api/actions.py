"""``POST /v2/images/{image_id}/actions/deactivate|reactivate``: Glance's image actions.

Glance's policy rules of the same names (by default an admin, or a member of the owning
project); 204 when the image is (or already was) in the asked status, 403 from any status
but ``active`` and ``deactivated``. While an image is deactivated its data is given to admins
only (:mod:`worker.api.data`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from worker.api.common import visible_image
from worker.api.errors import forbidden
from worker.api.policy import enforce_on_image
from worker.db.activation import NotAllowedInStatus
from worker.tasks.services import Records


async def deactivate(request: web.Request) -> web.Response:
    """``POST .../actions/deactivate``."""
    return await _act(request, "deactivate", lambda records: records.activation.deactivate)


async def reactivate(request: web.Request) -> web.Response:
    """``POST .../actions/reactivate``."""
    return await _act(request, "reactivate", lambda records: records.activation.reactivate)


async def _act(
    request: web.Request, rule: str, move: Callable[[Records], Callable[[str], Awaitable[None]]]
) -> web.Response:
    state, _identity, image = await visible_image(request)
    enforce_on_image(request, rule, image)
    try:
        await move(state.records)(image.id)
    except NotAllowedInStatus as refused:
        raise forbidden(str(refused)) from refused
    return web.Response(status=204)


ROUTES = [
    web.post("/v2/images/{image_id}/actions/deactivate", deactivate),
    web.post("/v2/images/{image_id}/actions/reactivate", reactivate),
]
