"""The task message of DESIGN.md: building it, and checking one that arrives.

A message that fails a check raises :class:`MessageRejected` with a low-cardinality
``reason`` (a metric label) and a ``detail`` for the log and the task row; such a message is
dead-lettered at once and never retried.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from flows.errors import InvalidRequest, UnknownMethod
from flows.request import ImportRequest, parse_import_request
from flows.requester import RequestContext
from flows.states import DELETE_TASK_TYPES, TaskType

VERSION = 1
TASK_TYPE = TaskType.IMPORT
#: Header carrying the publish time in integer microseconds since the epoch (AMQP floats
#: are 32-bit: too coarse for a Unix time).
ENQUEUED_AT = "x-imgworker-enqueued-at"
#: Default of ``[broker] max_message_bytes``: a real message is well under 4 KiB.
MAX_MESSAGE_BYTES: Final = 64 * 1024
#: Deepest nesting of arrays and objects a message may have (a real one has 4).
MAX_NESTING: Final = 32


class RejectReason(StrEnum):
    """Why a message was dead-lettered: its ``x-imgworker-reason`` header and metric label."""

    #: Not UTF-8, not JSON, or not a JSON object.
    BAD_JSON = "bad_json"
    #: Larger than ``[broker] max_message_bytes``; checked before anything is decoded.
    TOO_LARGE = "too_large"
    #: Arrays or objects nested deeper than any real message (:data:`MAX_NESTING`).
    TOO_DEEP = "too_deep"
    BAD_VERSION = "bad_version"
    #: A field is missing or has the wrong type or value.
    BAD_FIELD = "bad_field"
    BAD_METHOD = "bad_method"
    UNKNOWN_STORE = "unknown_store"
    #: The task the message names is not in the database.
    MISSING_TASK = "missing_task"
    #: The image the task names is not in the database.
    MISSING_IMAGE = "missing_image"
    #: Checking the message raised something no check foresaw (a bug; the body is still
    #: the same on every delivery, so retrying it cannot help).
    UNREADABLE = "unreadable"


class MessageRejected(Exception):
    """The message cannot be run; ``reason`` is its metric label."""

    def __init__(self, reason: RejectReason, detail: str, task_id: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        #: The task the message names, when it names one (so the row can say why).
        self.task_id = task_id


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """A checked task message: an import (with its request) or a deletion (without)."""

    task_id: str
    image_id: str
    request: ImportRequest | None
    context: RequestContext
    type: TaskType = TaskType.IMPORT

    @classmethod
    def deletion(
        cls, task_id: str, image_id: str, kind: TaskType, context: RequestContext
    ) -> TaskMessage:
        """The message of a delete task."""
        return cls(task_id, image_id, None, context, kind)

    @property
    def label(self) -> str:
        """The metric label of the task: the import method, or the delete task's type."""
        return self.request.method if self.request is not None else str(self.type)

    def to_json(self) -> bytes:
        """The message body as published."""
        body: dict[str, Any] = {
            "version": VERSION,
            "task_id": self.task_id,
            "image_id": self.image_id,
            "type": str(self.type),
        }
        if self.request is not None:
            body["import_req"] = self.request.to_body()
        context: dict[str, Any] = {
            "owner": self.context.project_id,
            "user_id": self.context.user_id,
            "request_id": self.context.request_id,
            "is_admin": self.context.is_admin,
            "roles": list(self.context.roles),
        }
        if self.context.token is not None:
            context["token"] = self.context.token
        body["context"] = context
        return json.dumps(body, separators=(",", ":")).encode()


def parse_message(
    body: bytes, configured_stores: Collection[str], max_bytes: int = MAX_MESSAGE_BYTES
) -> TaskMessage:
    """Check a message body; raise :class:`MessageRejected` saying what is wrong.

    Nothing else comes out: whatever the bytes are, the verdict depends on them alone, so a
    body that cannot be read is malformed (never a transient failure to retry). The size is
    checked before anything is decoded and the nesting depth before ``json.loads`` sees it,
    so no body can make the parser recurse or allocate without bound.
    """
    data = _decode(body, max_bytes)
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        # The version says how to read the rest: checked first, naming the task if it can.
        raise MessageRejected(
            RejectReason.BAD_VERSION, f"version {version!r} is not {VERSION}", _task_id_if_any(data)
        )
    task_id = _uuid(data, "task_id", None)
    image_id = _uuid(data, "image_id", task_id)
    kind = data.get("type", TASK_TYPE)
    context = _context(data.get("context"), task_id)
    if kind in DELETE_TASK_TYPES:
        return TaskMessage.deletion(task_id, image_id, TaskType(kind), context)
    if kind != TASK_TYPE:
        known = ", ".join(t.value for t in TaskType)
        raise MessageRejected(
            RejectReason.BAD_FIELD, f"type {kind!r} is not one of {known}", task_id
        )
    try:
        request = parse_import_request(data.get("import_req"))  # type: ignore[arg-type]
    except UnknownMethod as exc:
        raise MessageRejected(RejectReason.BAD_METHOD, str(exc), task_id) from exc
    except InvalidRequest as exc:
        raise MessageRejected(RejectReason.BAD_FIELD, str(exc), task_id) from exc
    unknown = [name for name in request.stores if name not in configured_stores]
    if unknown:
        raise MessageRejected(
            RejectReason.UNKNOWN_STORE,
            f"unknown store(s) {', '.join(unknown)}; configured: "
            + ", ".join(sorted(configured_stores)),
            task_id,
        )
    return TaskMessage(task_id, image_id, request, context)


def _decode(body: bytes, max_bytes: int) -> Mapping[str, Any]:
    """The body as a JSON object, checked for size, encoding and depth before parsing."""
    if len(body) > max_bytes:
        raise MessageRejected(
            RejectReason.TOO_LARGE,
            f"the body has {len(body)} bytes, more than [broker] max_message_bytes = {max_bytes}",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected(RejectReason.BAD_JSON, f"the body is not UTF-8: {exc}") from None
    if _nesting_exceeds(text, MAX_NESTING):
        raise MessageRejected(
            RejectReason.TOO_DEEP, f"the body nests arrays or objects more than {MAX_NESTING} deep"
        )
    try:
        data = json.loads(text)
    # ValueError covers JSONDecodeError and integers too long to convert; the depth check
    # makes RecursionError impossible, and catching it keeps that promise if it ever changes.
    except (ValueError, RecursionError) as exc:
        raise MessageRejected(RejectReason.BAD_JSON, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageRejected(RejectReason.BAD_JSON, "the body is not a JSON object")
    return data


#: Brackets, braces, quotes and backslashes: all the depth scan needs to look at.
_STRUCTURE: Final = re.compile(r'[\[\]{}"\\]')


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether arrays/objects in ``text`` nest deeper than ``limit`` (strings skipped).

    One pass, no recursion, linear in the length whatever the input (unlike a regex for
    strings, which backtracks on unterminated ones).
    """
    depth = 0
    in_string = False
    escaped = -1
    for match in _STRUCTURE.finditer(text):
        at, char = match.start(), match.group()
        if at == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _uuid(data: Mapping[str, Any], key: str, task_id: str | None) -> str:
    value = data.get(key)
    if value is None:
        raise MessageRejected(RejectReason.BAD_FIELD, f"{key} is missing", task_id)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(uuid.UUID(value))
    except ValueError:
        raise MessageRejected(
            RejectReason.BAD_FIELD, f"{key} {value!r} is not a UUID", task_id
        ) from None


def _task_id_if_any(data: Mapping[str, Any]) -> str | None:
    try:
        return _uuid(data, "task_id", None)
    except MessageRejected:
        return None


def _context(raw: object, task_id: str) -> RequestContext:
    if raw is None:
        return RequestContext()
    if not isinstance(raw, Mapping):
        raise MessageRejected(RejectReason.BAD_FIELD, "context must be an object", task_id)
    roles = raw.get("roles")
    roles = [] if roles is None else roles
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise MessageRejected(
            RejectReason.BAD_FIELD, "context.roles must be a list of strings", task_id
        )
    is_admin = raw.get("is_admin")
    is_admin = False if is_admin is None else is_admin
    if not isinstance(is_admin, bool):
        raise MessageRejected(
            RejectReason.BAD_FIELD, "context.is_admin must be true or false", task_id
        )
    return RequestContext(
        project_id=_optional_str(raw, "owner", task_id),
        user_id=_optional_str(raw, "user_id", task_id),
        request_id=_optional_str(raw, "request_id", task_id),
        is_admin=is_admin,
        roles=tuple(roles),
        token=_optional_str(raw, "token", task_id),
    )


def _optional_str(raw: Mapping[str, Any], key: str, task_id: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise MessageRejected(RejectReason.BAD_FIELD, f"context.{key} must be a string", task_id)
    return value
