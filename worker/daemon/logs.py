"""Structured logs: one JSON object per line, with the task's ids bound once per task.

``task_log_context`` binds ``task_id``, ``image_id`` and ``request_id`` in a context variable;
the handler's filter copies them onto every record emitted inside, whichever module logs it.
asyncio tasks and ``asyncio.to_thread`` calls started inside inherit the binding, because both
copy the current context.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TextIO

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_task_fields: ContextVar[Mapping[str, str]] = ContextVar("imgworker_task_fields", default=_EMPTY)


@contextlib.contextmanager
def task_log_context(
    task_id: str, image_id: str | None = None, request_id: str | None = None
) -> Iterator[None]:
    """Tag every record emitted inside (and in tasks started inside) with the task's ids.

    Ids that are ``None`` are left out of the records.
    """
    with log_fields(task_id=task_id, image_id=image_id, request_id=request_id):
        yield


@contextlib.contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Tag every record emitted inside with ``fields`` (added to those already bound)."""
    bound = dict(_task_fields.get())
    bound.update({key: value for key, value in fields.items() if value is not None})
    token = _task_fields.set(MappingProxyType(bound))
    try:
        yield
    finally:
        _task_fields.reset(token)


class TaskContextFilter(logging.Filter):
    """Copies the bound task ids onto each record (never overriding an explicit ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the ids; never drops a record."""
        for key, value in _task_fields.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries beyond the standard ones (``extra=`` and the task ids)."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines, so a traceback stays on its one line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, the extra fields appended as ``key=value``."""

    def __init__(self) -> None:
        """Use ``time level logger: message``."""
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` with its extra fields."""
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in record_extras(record).items())
        if not extras:
            return line
        head, sep, tail = line.partition("\n")
        return f"{head} {extras}{sep}{tail}"


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line, for a log message or a readiness reason."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_HANDLER_NAME: Final = "imgworker"


def configure_logging(
    level: str = "INFO", json_lines: bool = True, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) as JSON lines or readable text.

    Calling it again replaces the handler it installed before. Returns the handler.
    """
    levels = logging.getLevelNamesMapping()
    if level.upper() not in levels:
        known = ", ".join(sorted(name for name in levels if name != "NOTSET"))
        raise ValueError(f"log level {level!r} is unknown; use one of {known}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(levels[level.upper()])
    return handler


def log_uncaught() -> None:
    """Send through logging what Python would otherwise print raw to stderr.

    Uncaught exceptions (main thread and others), exceptions Python can only report
    ("Exception ignored in ..."), and warnings; asyncio's default loop exception handler
    already logs through the ``asyncio`` logger. A process whose output must be JSON lines
    calls this once, after :func:`configure_logging`.
    """
    logger = logging.getLogger("imgworker.uncaught")

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        logger.critical("uncaught %s", one_line(value), exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        logger.critical(
            "uncaught in thread %s: %s",
            name,
            one_line(args.exc_value),
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def unraisablehook(unraisable: Any) -> None:
        value = unraisable.exc_value
        logger.error(
            "%s %r: %s",
            unraisable.err_msg or "Exception ignored in",
            unraisable.object,
            one_line(value) if value is not None else "",
            exc_info=(unraisable.exc_type, value, unraisable.exc_traceback)
            if value is not None
            else None,
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    sys.unraisablehook = unraisablehook
    logging.captureWarnings(True)
