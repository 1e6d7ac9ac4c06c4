"""Reaching the database and the broker at start: wait while they are down, not when they refuse.

A worker started before its broker or database (a fresh cluster, a host reboot, a rolling
restart of PostgreSQL) waits for them: one log line per attempt naming what is unreachable
and when it tries again, ``/readyz`` naming the same, ``/livez`` fine. It gives up at once only
when a dependency answers and refuses in a way no wait can cure — bad credentials, an unknown
virtual host or database — deciding by the exception's type or SQLSTATE, never its text
(aio-pika's ``CONNECTION_EXCEPTIONS`` idea).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

import aiormq.exceptions
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from yarl import URL

from flows.errors import RecordsUnavailable
from worker.daemon.logs import one_line
from worker.db.outages import causes, innermost, sqlstate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The first retry waits about this long; each one doubles it up to :data:`MAX_DELAY_SECONDS`.
FIRST_DELAY_SECONDS: Final = 0.5
MAX_DELAY_SECONDS: Final = 30.0

#: What the broker says when it will never accept this configuration: refused credentials
#: (ACCESS_REFUSED, no common SASL mechanism), a virtual host it refuses (530 NOT_ALLOWED;
#: aiormq reports a Connection.Close answering Connection.Open as an unexpected frame), a
#: peer that does not speak AMQP 0-9-1, a queue declared with other arguments (406) or no
#: permission to declare it (403).
BROKER_REFUSALS: Final = (
    aiormq.exceptions.ProbableAuthenticationError,
    aiormq.exceptions.AuthenticationError,
    aiormq.exceptions.ConnectionNotAllowed,
    aiormq.exceptions.ProtocolSyntaxError,
    aiormq.exceptions.IncompatibleProtocolError,
    aiormq.exceptions.ChannelPreconditionFailed,
    aiormq.exceptions.ChannelAccessRefused,
)
#: Refusals of the login itself (the user or the password).
LOGIN_REFUSALS: Final = (
    aiormq.exceptions.AuthenticationError,
    aiormq.exceptions.ProbableAuthenticationError,
)
#: SQLSTATEs of a database that will never accept this configuration: class 28 (invalid
#: authorization: unknown role, wrong password, no pg_hba entry), 3D000 (no such database),
#: 42501 (no CONNECT privilege).
DATABASE_REFUSALS: Final = ("28", "3D000", "42501")
#: What an attempt may raise that is about the dependency (anything else is a bug).
TROUBLE: Final = (
    OSError,
    TimeoutError,
    aiormq.exceptions.AMQPError,
    DBAPIError,
    ArgumentError,
    RecordsUnavailable,
)


class DependencyRefused(Exception):
    """A dependency answered and refused the configuration: waiting cannot help (exit 2)."""


@dataclass(frozen=True, slots=True)
class Dependency:
    """Something the worker needs before it can consume: its name, where it is, and how to
    tell a refusal from an outage."""

    #: ``database`` or ``broker``: what readiness and the log call it.
    name: str
    #: Its URL without the password.
    where: str
    #: What to fix when it refuses.
    fix: str
    refused: Callable[[BaseException], bool]
    #: Libraries that log each failed connection themselves (a traceback, a "reconnecting
    #: in 5 s" that is not what happens); quiet while an attempt runs.
    chatty_loggers: tuple[str, ...] = ()
    #: What a refusal means, when its type tells more than the library's words.
    explain: Callable[[BaseException], str | None] = lambda _error: None

    def refusal(self, error: BaseException) -> str:
        """One line: who refused, why, and what to change."""
        why = self.explain(error)
        if why is not None:
            return f"the {self.name} at {self.where} {why}"
        return (
            f"the {self.name} at {self.where} refused the connection: "
            f"{one_line(innermost(error))}; {self.fix}"
        )


def broker(url: str, setting: str = "[broker] url") -> Dependency:
    """The RabbitMQ at ``url`` (the value of ``setting``)."""
    return Dependency(
        "broker",
        _hide_password(url),
        f"fix the user, password or virtual host in {setting}",
        broker_refused,
        ("aiormq.connection", "aio_pika.connection", "aio_pika.robust_connection"),
        lambda error: _broker_refusal(error, url, setting),
    )


def _broker_refusal(error: BaseException, url: str, setting: str) -> str | None:
    """What RabbitMQ refused, by the error's type: the login, or the virtual host (its
    ``Connection.Close`` answering ``Connection.Open`` arrives as an unexpected frame)."""
    refusal = next((c for c in causes(error) if isinstance(c, BROKER_REFUSALS)), None)
    if isinstance(refusal, LOGIN_REFUSALS):
        return (
            f"refused the user or password (ACCESS_REFUSED); fix the user and password in {setting}"
        )
    if isinstance(refusal, aiormq.exceptions.InvalidFrameError):
        parsed = URL(url)
        vhost = parsed.path[1:] or "/"
        return (
            f"refused virtual host {vhost!r}: it does not exist, or user {parsed.user!r} may "
            f"not use it; fix the virtual host (the path after the port) in {setting}, or "
            f"grant access: rabbitmqctl set_permissions -p {vhost} {parsed.user} '.*' '.*' '.*'"
        )
    return None


def database(url: str) -> Dependency:
    """The database at ``url``."""
    return Dependency(
        "database",
        _hide_password(url),
        "fix the user, password or database name in [database] url",
        database_refused,
    )


def broker_refused(error: BaseException) -> bool:
    """Whether ``error`` from connecting to RabbitMQ means it will never accept us."""
    return isinstance(error, BROKER_REFUSALS)


def database_refused(error: BaseException) -> bool:
    """Whether ``error`` from connecting to the database means it will never accept us."""
    if isinstance(error, ArgumentError):  # a URL SQLAlchemy cannot even parse
        return True
    state = sqlstate(error)
    return state is not None and state.startswith(DATABASE_REFUSALS)


class Backoff:
    """Delays that double from :data:`FIRST_DELAY_SECONDS` to :data:`MAX_DELAY_SECONDS`,
    each jittered to 50–100 % so a restarted fleet does not knock in step."""

    def __init__(self) -> None:
        self._ceiling = FIRST_DELAY_SECONDS

    def next(self) -> float:
        """The next delay in seconds."""
        delay = self._ceiling * random.uniform(0.5, 1.0)
        self._ceiling = min(self._ceiling * 2, MAX_DELAY_SECONDS)
        return delay


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


@contextlib.contextmanager
def _quiet(loggers: tuple[str, ...]) -> Iterator[None]:
    """Drop what ``loggers`` say (below CRITICAL) inside: each attempt's own line says it."""
    quiet = _Quiet()
    for name in loggers:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield
    finally:
        for name in loggers:
            logging.getLogger(name).removeFilter(quiet)


async def reach(
    dependency: Dependency,
    attempt: Callable[[], Awaitable[T]],
    waiting: dict[str, str],
) -> T:
    """Run ``attempt`` until it succeeds; return what it returned.

    While ``dependency`` is unreachable, ``waiting[dependency.name]`` says so (readiness
    reports it) and each failed attempt logs one line with the next delay. Raises
    :class:`DependencyRefused` when the dependency refuses the configuration; any other
    unexpected error propagates.
    """
    backoff = Backoff()
    attempts = 0
    try:
        while True:
            attempts += 1
            try:
                with _quiet(dependency.chatty_loggers):
                    return await attempt()
            except TROUBLE as exc:
                if dependency.refused(exc):
                    raise DependencyRefused(dependency.refusal(exc)) from exc
                delay = backoff.next()
                problem = (
                    f"{dependency.name} unreachable at {dependency.where}: "
                    f"{one_line(innermost(exc))}"
                )
                waiting[dependency.name] = f"{problem} (attempt {attempts}; next in {delay:.1f} s)"
                log.warning("%s; attempt %d, next in %.1f s", problem, attempts, delay)
                await asyncio.sleep(delay)
    finally:
        waiting.pop(dependency.name, None)


async def look_once(dependency: Dependency, attempt: Callable[[], Awaitable[object]]) -> None:
    """Try ``dependency`` once: raise :class:`DependencyRefused` if it refuses the
    configuration; if it is only unreachable, log one warning and return (it is used later,
    when it may be back)."""
    try:
        with _quiet(dependency.chatty_loggers):
            await attempt()
    except TROUBLE as exc:
        if dependency.refused(exc):
            raise DependencyRefused(dependency.refusal(exc)) from exc
        log.warning(
            "%s unreachable at %s for now: %s",
            dependency.name,
            dependency.where,
            one_line(innermost(exc)),
        )


def _hide_password(url: str) -> str:
    try:
        if url.startswith(("amqp://", "amqps://")):
            parsed = URL(url)
            return str(parsed.with_password("***")) if parsed.password else url
        return make_url(url).render_as_string(hide_password=True)
    except (ValueError, ArgumentError):
        return "(an unparsable URL)"
