"""``GET /v2/info/usage``: the caller's project's limits and usage (``glance usage``)."""

from __future__ import annotations

from aiohttp import web

from worker.api.common import json_response
from worker.api.identity import identity_of
from worker.api.state import state_of


async def usage_info(request: web.Request) -> web.Response:
    """Each unified-limit resource's ``limit`` and ``usage``; ``{}`` when limits are off."""
    state, identity = state_of(request), identity_of(request)
    return json_response({"usage": await state.quotas.usage(identity.project_id)})


ROUTES = [web.get("/v2/info/usage", usage_info)]
