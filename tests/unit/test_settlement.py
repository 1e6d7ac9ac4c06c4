"""Settling a delivery: each of the four endings does exactly its one broker call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from tests.support.sleeps import record_sleeps
from worker.daemon import settlement as settlement_module
from worker.daemon.messages import MessageRejected, RejectReason
from worker.daemon.metrics import Metrics
from worker.daemon.settlement import (
    DETAIL_HEADER,
    MAX_BACKOFF_SECONDS,
    REASON_HEADER,
    Ack,
    DeadLetter,
    Requeue,
    Retry,
    Settlement,
    Settler,
)
from worker.db.tasks import TaskEnd


@dataclass
class Delivery:
    """The part of an incoming message a settlement touches; records the calls."""

    body: bytes = b"{}"
    headers: dict[str, Any] = field(default_factory=lambda: {"x-custom": "kept"})
    message_id: str = "m-1"
    content_type: str = "application/json"
    calls: list[tuple[str, bool | None]] = field(default_factory=list)

    async def ack(self) -> None:
        self.calls.append(("ack", None))

    async def nack(self, requeue: bool = True) -> None:
        self.calls.append(("nack", requeue))

    async def reject(self, requeue: bool = False) -> None:
        self.calls.append(("reject", requeue))


@dataclass
class DeadLetters:
    """An exchange that keeps what is published to it (or fails, when told to)."""

    fail: bool = False
    published: list[aio_pika.Message] = field(default_factory=list)

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        if self.fail:
            raise ConnectionError("channel closed")
        self.published.append(message)


@dataclass
class Tasks:
    ended: list[tuple[str, TaskEnd]] = field(default_factory=list)

    async def finish(self, task_id: str, end: TaskEnd) -> bool:
        self.ended.append((task_id, end))
        return True


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_sleeps(monkeypatch, settlement_module)


async def _apply(
    settlement: Settlement, exchange: DeadLetters | None = None, tasks: Tasks | None = None
) -> Delivery:
    delivery = Delivery()
    settler = Settler(exchange or DeadLetters(), "import", Metrics(), tasks or Tasks())  # type: ignore[arg-type]
    await settler.apply(delivery, settlement)  # type: ignore[arg-type]
    return delivery


async def test_ack(slept: list[float]) -> None:
    assert (await _apply(Ack())).calls == [("ack", None)]
    assert slept == []


async def test_requeue_goes_back_at_once(slept: list[float]) -> None:
    assert (await _apply(Requeue())).calls == [("nack", True)]
    assert slept == []


async def test_retry_goes_back_after_its_backoff(slept: list[float]) -> None:
    assert (await _apply(Retry(3))).calls == [("nack", True)]
    (wait,) = slept
    assert 4.0 <= wait <= 8.0


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.0, 2.0), (5, 16.0, 32.0)])
def test_backoff_doubles_with_jitter(attempt: int, low: float, high: float) -> None:
    waits = [Retry(attempt).backoff_seconds() for _ in range(200)]
    assert all(low <= wait <= high for wait in waits)


def test_backoff_is_capped() -> None:
    waits = [Retry(10**6).backoff_seconds() for _ in range(200)]
    assert all(MAX_BACKOFF_SECONDS / 2 <= wait <= MAX_BACKOFF_SECONDS for wait in waits)


async def test_dead_letter_copies_with_the_reason_ends_the_task_and_acks() -> None:
    exchange, tasks = DeadLetters(), Tasks()
    rejected = MessageRejected(RejectReason.BAD_VERSION, "version 7 is not 1", "t-1")
    delivery = await _apply(DeadLetter(rejected), exchange, tasks)
    assert delivery.calls == [("ack", None)]
    (copy,) = exchange.published
    assert copy.body == delivery.body and copy.message_id == "m-1"
    assert copy.headers == {
        "x-custom": "kept",
        REASON_HEADER: "bad_version",
        DETAIL_HEADER: "version 7 is not 1",
    }
    ((task_id, end),) = tasks.ended
    assert task_id == "t-1" and end.message == "rejected: bad_version: version 7 is not 1"


async def test_dead_letter_without_a_task_touches_no_task() -> None:
    tasks = Tasks()
    await _apply(DeadLetter(MessageRejected(RejectReason.TOO_DEEP, "deep")), tasks=tasks)
    assert tasks.ended == []


async def test_dead_letter_falls_back_to_the_broker_when_the_copy_fails() -> None:
    delivery = await _apply(
        DeadLetter(MessageRejected(RejectReason.BAD_JSON, "x")), DeadLetters(fail=True)
    )
    assert delivery.calls == [("reject", False)]
