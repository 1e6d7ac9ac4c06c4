"""The task message of DESIGN.md: building it, and checking one that arrives.

A message that fails a check raises :class:`MessageRejected` with a low-cardinality
``reason`` (a metric label) and a ``detail`` for the log and the task row; such a message is
dead-lettered at once and never retried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from flows.context import RequestContext
from flows.errors import InvalidRequest, UnknownMethod
from flows.request import ImportRequest, parse_import_request

VERSION = 1
TASK_TYPE = "api_image_import"
#: Header carrying the publish time in integer microseconds since the epoch (AMQP floats
#: are 32-bit: too coarse for a Unix time).
ENQUEUED_AT = "x-imgworker-enqueued-at"


class MessageRejected(Exception):
    """The message cannot be run; ``reason`` is its metric label."""

    def __init__(self, reason: str, detail: str, task_id: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        #: The task the message names, when it names one (so the row can say why).
        self.task_id = task_id


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """A checked task message."""

    task_id: str
    image_id: str
    request: ImportRequest
    context: RequestContext

    def to_json(self) -> bytes:
        """The message body as published."""
        body = {
            "version": VERSION,
            "task_id": self.task_id,
            "image_id": self.image_id,
            "type": TASK_TYPE,
            "import_req": self.request.to_body(),
            "context": {
                "owner": self.context.owner,
                "user_id": self.context.user_id,
                "request_id": self.context.request_id,
                "is_admin": self.context.is_admin,
                "roles": list(self.context.roles),
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()


def parse_message(body: bytes, configured_stores: Collection[str]) -> TaskMessage:
    """Check a message body; raise :class:`MessageRejected` saying what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageRejected("bad_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MessageRejected("bad_json", "the body is not a JSON object")
    task_id = _uuid(data, "task_id", None)
    if data.get("version") != VERSION:
        raise MessageRejected(
            "bad_version", f"version {data.get('version')!r} is not {VERSION}", task_id
        )
    image_id = _uuid(data, "image_id", task_id)
    if data.get("type", TASK_TYPE) != TASK_TYPE:
        raise MessageRejected("bad_field", f"type {data.get('type')!r} is not {TASK_TYPE}", task_id)
    try:
        request = parse_import_request(data.get("import_req"))  # type: ignore[arg-type]
    except UnknownMethod as exc:
        raise MessageRejected("bad_method", str(exc), task_id) from exc
    except InvalidRequest as exc:
        raise MessageRejected("bad_field", str(exc), task_id) from exc
    unknown = [name for name in request.stores if name not in configured_stores]
    if unknown:
        raise MessageRejected(
            "unknown_store",
            f"unknown store(s) {', '.join(unknown)}; configured: "
            + ", ".join(sorted(configured_stores)),
            task_id,
        )
    return TaskMessage(task_id, image_id, request, _context(data.get("context"), task_id))


def _uuid(data: Mapping[str, Any], key: str, task_id: str | None) -> str:
    value = data.get(key)
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _missing(key)
    except ValueError:
        raise MessageRejected("bad_field", f"{key} {value!r} is not a UUID", task_id) from None


def _missing(key: str) -> str:
    raise MessageRejected("bad_field", f"{key} is missing")


def _context(raw: object, task_id: str) -> RequestContext:
    if raw is None:
        return RequestContext()
    if not isinstance(raw, Mapping):
        raise MessageRejected("bad_field", "context must be an object", task_id)
    roles = raw.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise MessageRejected("bad_field", "context.roles must be a list of strings", task_id)
    return RequestContext(
        owner=_optional_str(raw, "owner", task_id),
        user_id=_optional_str(raw, "user_id", task_id),
        request_id=_optional_str(raw, "request_id", task_id),
        is_admin=bool(raw.get("is_admin", False)),
        roles=tuple(roles),
    )


def _optional_str(raw: Mapping[str, Any], key: str, task_id: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise MessageRejected("bad_field", f"context.{key} must be a string", task_id)
    return value
