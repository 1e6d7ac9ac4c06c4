"""Telling a database that did not answer from one that answered: by type and SQLSTATE.

Never by a message's text (aio-pika's ``CONNECTION_EXCEPTIONS`` idea): an outage is a
connection SQLAlchemy found dead, a driver error whose SQLSTATE says the connection failed or
the server is shutting down or starting up, a pool that could hand out no connection in time,
or SQLite still busy after its timeout. What a connection attempt raises by itself — refused,
reset, timed out: an :class:`OSError` — is an outage too, but only there (see
:class:`~worker.db.transactions.Transactional`): inside a transaction an ``OSError`` may be the
work's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: SQLSTATEs of a connection that failed (class 08), a server shutting down, crashed or still
#: starting (57P01–57P03), or out of connection slots (53300).
OUTAGE_SQLSTATES: Final = ("08", "57P01", "57P02", "57P03", "53300")
#: SQLite's result codes for a database another connection held past the busy timeout.
SQLITE_BUSY_CODES: Final = (5, 6)


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it wraps (SQLAlchemy's ``orig``, then each ``__cause__``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's and the driver's wrappers."""
    for current in causes(error):
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def innermost(error: BaseException) -> BaseException:
    """The driver's own error inside SQLAlchemy's wrappers (its message is the plain one)."""
    *_, last = causes(error)
    return last


def is_outage(error: BaseException) -> bool:
    """Whether ``error``, raised by a statement or a commit, means the database did not answer."""
    if isinstance(error, (PoolTimeout, DisconnectionError)):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error.orig, OSError):
        return True
    state = sqlstate(error)
    if state is not None:
        return state.startswith(OUTAGE_SQLSTATES)
    code = getattr(error.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in SQLITE_BUSY_CODES


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error``, raised while connecting, means the database could not be reached."""
    return isinstance(error, OSError) or is_outage(error)


def describe(error: BaseException) -> str:
    """The driver's error in one line: ``ConnectionRefusedError: [Errno 111] ...``."""
    inner = innermost(error)
    text = " ".join(str(inner).split()) or "no detail"
    return f"{type(inner).__name__}: {text}"
