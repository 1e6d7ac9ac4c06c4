"""Waiting for the database and the broker: outages are waited out, refusals end the start."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiormq.exceptions
import pytest
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from tests.support.sleeps import record_sleeps
from worker.daemon import startup
from worker.daemon.startup import (
    MAX_DELAY_SECONDS,
    Backoff,
    DependencyRefused,
    broker,
    broker_refused,
    database,
    database_refused,
    reach,
)


class DriverError(Exception):
    """What asyncpg raises: the SQLSTATE is an attribute."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str, message: str = "no") -> DBAPIError:
    """A driver error as SQLAlchemy hands it over."""
    driver = DriverError(sqlstate, message)
    try:
        raise DBAPIError("SELECT 1", None, driver) from driver
    except DBAPIError as error:
        return error


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (aiormq.exceptions.ProbableAuthenticationError("ACCESS_REFUSED"), True),
        (aiormq.exceptions.InvalidFrameError("got Connection.Close"), True),
        (aiormq.exceptions.ConnectionNotAllowed(530, "vhost"), True),
        (aiormq.exceptions.AMQPConnectionError(111, "Connect call failed"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (TimeoutError(), False),
    ],
)
def test_broker_errors_by_type(error: BaseException, refused: bool) -> None:
    assert broker_refused(error) is refused


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (_wrapped("28000"), True),  # role does not exist
        (_wrapped("28P01"), True),  # wrong password
        (_wrapped("3D000"), True),  # database does not exist
        (_wrapped("42501"), True),  # no CONNECT privilege
        (_wrapped("57P03"), False),  # the database system is starting up
        (_wrapped("53300"), False),  # too many connections
        (OperationalError("SELECT 1", None, OSError("refused")), False),
        (ConnectionRefusedError(111, "refused"), False),
        (ArgumentError("Could not parse SQLAlchemy URL"), True),
    ],
)
def test_database_errors_by_sqlstate(error: BaseException, refused: bool) -> None:
    assert database_refused(error) is refused


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(20)]
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0
    assert all(MAX_DELAY_SECONDS / 2 <= delay <= MAX_DELAY_SECONDS for delay in delays[-5:])


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_sleeps(monkeypatch, startup)


async def test_an_outage_is_waited_out(
    slept: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    waiting: dict[str, str] = {}
    seen: list[str] = []
    failures = [ConnectionRefusedError(111, "refused"), TimeoutError()]

    async def attempt() -> str:
        seen.append(waiting.get("broker", ""))
        if failures:
            raise failures.pop(0)
        return "connected"

    dependency = broker("amqp://guest:secret@127.0.0.1:5999/")
    assert await reach(dependency, attempt, waiting) == "connected"
    assert len(slept) == 2 and waiting == {}
    assert seen[0] == "" and seen[2].startswith(
        "broker unreachable at amqp://guest:***@127.0.0.1:5999/: TimeoutError (attempt 2; next in"
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "worker.daemon.startup"]
    assert len(lines) == 2 and "ConnectionRefusedError" in lines[0] and "attempt 1" in lines[0]
    assert "secret" not in " ".join(lines)


async def test_a_refusal_ends_the_wait(slept: list[float]) -> None:
    async def attempt() -> None:
        raise _wrapped("28P01", 'password authentication failed for user "me"')

    waiting: dict[str, str] = {}
    dependency = database("postgresql+asyncpg://me:secret@db/imgworker")
    with pytest.raises(DependencyRefused) as refused:
        await reach(dependency, attempt, waiting)
    assert str(refused.value) == (
        "the database at postgresql+asyncpg://me:***@db/imgworker refused the connection: "
        'DriverError: password authentication failed for user "me"; '
        "fix the user, password or database name in [database] url"
    )
    assert slept == [] and waiting == {}


async def test_a_bug_is_not_waited_for(slept: list[float]) -> None:
    async def attempt() -> None:
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        await reach(broker("amqp://127.0.0.1/"), attempt, {})
    assert slept == []


async def test_a_cancelled_wait_leaves_readiness_clean() -> None:
    waiting: dict[str, str] = {}

    async def attempt() -> None:
        raise ConnectionRefusedError(111, "refused")

    job = asyncio.create_task(reach(broker("amqp://127.0.0.1/"), attempt, waiting))
    while not waiting:
        await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert waiting == {}


UNCAUGHT = """
import threading, warnings
from worker.daemon.logs import configure_logging, log_uncaught
configure_logging("INFO")
log_uncaught()
warnings.warn("careful")
thread = threading.Thread(target=lambda: 1 / 0, name="helper")
thread.start(); thread.join()
raise RuntimeError("boom\\nsecond line")
"""


def test_uncaught_exceptions_and_warnings_are_json_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["logger"] for r in records] == [
        "py.warnings",
        "imgworker.uncaught",
        "imgworker.uncaught",
    ]
    assert "careful" in records[0]["message"]
    assert records[1]["message"].startswith("uncaught in thread helper: ZeroDivisionError")
    assert records[2]["message"] == "uncaught RuntimeError: boom second line"
    assert "Traceback" in records[2]["exc"]
