"""A database that does not answer: told apart by type, retried briefly, never a failed task."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from flows.engine import FlowFailed
from flows.errors import RecordsUnavailable, SourceError, StoreUnavailable
from flows.observer import NullObserver
from flows.states import AttemptStatus, ImageStatus, TaskStatus
from tests.support.sleeps import record_sleeps
from worker.daemon.messages import MessageRejected, RejectReason
from worker.daemon.settlement import DeadLetter, Retry, after_error
from worker.db import transactions
from worker.db.outages import is_outage, is_unreachable
from worker.db.transactions import RETRY_DELAYS, Transactional
from worker.tasks import runner


class DriverError(Exception):
    """What asyncpg raises: the SQLSTATE is an attribute."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver said {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    try:
        raise DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated) from orig
    except DBAPIError as error:
        return error


class SqliteError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__("sqlite")
        self.sqlite_errorcode = code


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_wrapped(DriverError("57P01")), True),  # terminating connection (restart, terminate)
        (_wrapped(DriverError("57P03")), True),  # the database system is starting up
        (_wrapped(DriverError("08006")), True),  # connection failure
        (_wrapped(DriverError("53300")), True),  # too many connections
        (_wrapped(Exception("closed"), invalidated=True), True),
        (_wrapped(ConnectionResetError(errno.ECONNRESET, "reset")), True),
        (_wrapped(SqliteError(5)), True),  # SQLITE_BUSY past the timeout
        (PoolTimeout("QueuePool limit reached"), True),
        (_wrapped(DriverError("23505")), False),  # unique violation: an answer
        (_wrapped(DriverError("28P01")), False),  # wrong password: an answer
        (_wrapped(SqliteError(1)), False),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False),  # only when connecting
        (ValueError("a bug"), False),
    ],
)
def test_outages_by_type_and_sqlstate(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


def test_connecting_an_os_error_is_unreachable() -> None:
    assert is_unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert is_unreachable(TimeoutError())
    assert not is_unreachable(_wrapped(DriverError("28P01")))


class FakeSession:
    """A session whose connect, work or commit fails as its test says."""

    def __init__(self, plan: dict[str, list[BaseException]], log: list[str]) -> None:
        self._plan = plan
        self._log = log

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def begin(self) -> FakeTransaction:
        return FakeTransaction(self._plan, self._log)

    async def connection(self) -> None:
        self._log.append("connect")
        if self._plan["connect"]:
            raise self._plan["connect"].pop(0)


class FakeTransaction:
    def __init__(self, plan: dict[str, list[BaseException]], log: list[str]) -> None:
        self._plan = plan
        self._log = log

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self._log.append("commit")
            if self._plan["commit"]:
                raise self._plan["commit"].pop(0)


def _repository(**plan: list[BaseException]) -> tuple[Transactional, list[str]]:
    log: list[str] = []
    full = {"connect": [], "work": [], "commit": [], **plan}
    return Transactional(lambda: FakeSession(full, log)), log  # type: ignore[arg-type]


async def _work(repository: Transactional, log: list[str], failures: list[BaseException]) -> str:
    async def work(session: Any) -> str:
        log.append("work")
        if failures:
            raise failures.pop(0)
        return "done"

    return await repository._in_transaction(work)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_sleeps(monkeypatch, transactions)


async def test_a_database_that_stays_down_is_reported_after_the_retries(
    sleeps: list[float],
) -> None:
    refused = [ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")] * 10
    repository, log = _repository(connect=list(refused))
    with pytest.raises(RecordsUnavailable, match="ConnectionRefusedError") as caught:
        await _work(repository, log, [])
    assert caught.value.transient
    assert sleeps == list(RETRY_DELAYS)
    assert log == ["connect"] * (len(RETRY_DELAYS) + 1)


async def test_a_restart_is_ridden_out(sleeps: list[float]) -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    repository, log = _repository(connect=[refused, refused])
    shutdown = _wrapped(DriverError("57P01"))
    assert await _work(repository, log, [shutdown]) == "done"
    assert log == ["connect", "connect", "connect", "work", "connect", "work", "commit"]


async def test_a_dead_pooled_connection_is_replaced_at_once(sleeps: list[float]) -> None:
    repository, log = _repository()
    dead = _wrapped(Exception("connection is closed"), invalidated=True)
    assert await _work(repository, log, [dead]) == "done"
    assert sleeps == [0.0]


async def test_an_outage_at_the_commit_is_not_run_twice(sleeps: list[float]) -> None:
    repository, log = _repository(commit=[_wrapped(DriverError("57P01"))])
    with pytest.raises(RecordsUnavailable):
        await _work(repository, log, [])
    assert log == ["connect", "work", "commit"] and sleeps == []


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "the work's own file"), _wrapped(DriverError("23505"))],
)
async def test_what_is_not_an_outage_is_raised_as_it_is(
    sleeps: list[float], error: Exception
) -> None:
    repository, log = _repository()
    with pytest.raises(type(error)):
        await _work(repository, log, [error])
    assert log == ["connect", "work"] and sleeps == []


class Tasks:
    """Records what the runner asks of the task records (or fails, as told)."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    async def requeue(self, task_id: str, message: str) -> None:
        self.calls.append(("requeue", message))
        if self.fail is not None:
            raise self.fail

    async def finish(self, task_id: str, end: Any) -> bool:
        self.calls.append(("finish", end))
        return True


def _failure(tmp_path: Path, error: Exception, tasks: Tasks, final: bool) -> Any:
    services = SimpleNamespace(tasks=tasks, observer=NullObserver(), worker_id="w1")
    ctx = SimpleNamespace(
        task_id="t1",
        image_id="i1",
        image=object(),  # the lock step recorded the image: a failure would fail it
        is_copy=False,
        settings=SimpleNamespace(staging_dir=tmp_path),
        failed={},
    )
    return runner._record_failure(services, ctx, FlowFailed("store:central", error), final)  # type: ignore[arg-type]


async def test_the_records_unavailable_on_the_last_delivery_requeue_the_task(
    tmp_path: Path,
) -> None:
    tasks = Tasks()
    outcome = await _failure(tmp_path, RecordsUnavailable("AdminShutdownError: x"), tasks, True)
    assert outcome.status == AttemptStatus.RETRY and outcome.transient
    assert [call for call, _ in tasks.calls] == ["requeue"]


async def test_records_still_down_to_requeue_leave_the_message_to_be_delivered_again(
    tmp_path: Path,
) -> None:
    tasks = Tasks(fail=RecordsUnavailable("ConnectionRefusedError: y"))
    with pytest.raises(RecordsUnavailable):
        await _failure(tmp_path, RecordsUnavailable("ConnectionRefusedError: y"), tasks, False)
    assert [call for call, _ in tasks.calls] == ["requeue"]


async def test_a_store_outage_on_the_last_delivery_is_the_task_s_failure(tmp_path: Path) -> None:
    tasks = Tasks()
    outcome = await _failure(tmp_path, StoreUnavailable("dcn0", "timed out"), tasks, True)
    assert outcome.status == AttemptStatus.FAILURE and outcome.reason == "store_unavailable"
    ((call, end),) = tasks.calls
    assert call == "finish" and end.status == TaskStatus.FAILURE
    assert end.image_status == ImageStatus.FAILED


async def test_a_store_outage_before_the_last_delivery_is_retried(tmp_path: Path) -> None:
    tasks = Tasks()
    outcome = await _failure(tmp_path, StoreUnavailable("dcn0", "timed out"), tasks, False)
    assert outcome.status == AttemptStatus.RETRY
    assert [call for call, _ in tasks.calls] == ["requeue"]


def test_a_delivery_is_settled_by_the_error_s_type() -> None:
    rejected = MessageRejected(RejectReason.MISSING_TASK, "no such task")
    assert after_error(rejected, 3, "checking") == DeadLetter(rejected)
    assert after_error(RecordsUnavailable("down"), 3, "task t") == Retry(3)
    assert after_error(SourceError("gone"), 2, "task t") == Retry(2)
    assert after_error(ValueError("bug"), 1, "task t") == Retry(1)
