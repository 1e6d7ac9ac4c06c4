"""Small helpers every handler uses: ids from the path, JSON responses, the image lookup."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from flows.records import ImageRecord
from flows.requester import RequestContext
from worker.api.errors import not_found
from worker.api.identity import identity_of
from worker.api.policy import enforce_on_image
from worker.api.state import ApiState, state_of


def is_uuid(value: str) -> bool:
    """Tell whether ``value`` is a UUID in any of its usual spellings."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def path_image_id(request: web.Request, key: str = "image_id") -> str:
    """The image id in the path; 404 when it cannot be an image id (as Glance answers)."""
    image_id = request.match_info[key]
    if not is_uuid(image_id):
        raise not_found(f"No image found with ID {image_id}")
    return image_id


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON body with Glance's content type."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


async def visible_image(request: web.Request) -> tuple[ApiState, RequestContext, ImageRecord]:
    """The state, the caller, and the image of the path if the caller may see it: the
    catalogue finds it and the ``get_image`` rule admits them (else 404)."""
    state, identity = state_of(request), identity_of(request)
    image = await state.catalog.find(path_image_id(request), identity)
    enforce_on_image(request, "get_image", image)
    return state, identity, image
