"""Reading request bodies: media type checked, size capped, JSON parsed without surprises."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from aiohttp import web

from worker.api.errors import ApiError, bad_request

JSON = "application/json"


def media_type(request: web.Request) -> str:
    """The request's media type without parameters (``application/json``)."""
    return request.content_type.split(";")[0].strip().lower()


def require_media_type(request: web.Request, accepted: Collection[str]) -> str:
    """415 unless the request's media type is one of ``accepted``."""
    found = media_type(request)
    if found not in accepted:
        raise ApiError(
            415,
            f"The request media type {found or '(none)'} is not supported by this server; "
            f"send {' or '.join(accepted)}.",
        )
    return found


async def read_capped(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or 413 as soon as it exceeds ``max_bytes`` (declared or streamed)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {max_bytes} bytes.")


async def read_json(
    request: web.Request, max_bytes: int, accepted: Collection[str] = (JSON,)
) -> Any:
    """The body as JSON (media type and size checked); 400 for anything malformed."""
    require_media_type(request, accepted)
    raw = await read_capped(request, max_bytes)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request("Malformed JSON in request body.") from None


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object."""
    body = await read_json(request, max_bytes)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body
