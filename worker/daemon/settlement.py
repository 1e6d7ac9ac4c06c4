"""How a delivery ends: one decision per message (a :data:`Settlement`), applied in one place.

The consumer decides; :meth:`Settler.apply` is the only code that acks, nacks or rejects
(aio-pika's ``message.process()`` / ``RejectMessage`` idea, with the four endings spelled out):

- :class:`Ack` — the task reached ``success`` or ``failure`` (or had already: a duplicate);
- :class:`Retry` — a transient failure (or an unforeseen one, see :func:`after_error`): back
  to the queue after a jittered backoff;
- :class:`DeadLetter` — the message can never run: copied to the dead-letter exchange with
  ``x-imgworker-reason``/``x-imgworker-detail``, its task (if any) ended failed, then acked;
- :class:`Requeue` — this worker is stopping: back to the queue at once for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Final

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from flows.errors import TransientError
from worker.daemon.messages import MessageRejected
from worker.daemon.metrics import Metrics
from worker.db.tasks import SqlTaskRepository, TaskEnd

log = logging.getLogger(__name__)

#: Longest wait before a retried message goes back to the queue.
MAX_BACKOFF_SECONDS: Final = 60.0
#: Headers the dead-letter copy carries.
REASON_HEADER: Final = "x-imgworker-reason"
DETAIL_HEADER: Final = "x-imgworker-detail"


@dataclass(frozen=True, slots=True)
class Ack:
    """The task ended (or had already ended): the message is done."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: nack back to the queue after a backoff that grows with ``attempt``."""

    attempt: int

    def backoff_seconds(self) -> float:
        """2^attempt seconds, at most :data:`MAX_BACKOFF_SECONDS`, jittered to 50–100 %."""
        return min(MAX_BACKOFF_SECONDS, 2.0 ** min(self.attempt, 16)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The message can never run: dead-letter it with ``rejected``'s reason, never retry."""

    rejected: MessageRejected


@dataclass(frozen=True, slots=True)
class Requeue:
    """The worker is stopping: nack back to the queue now, for another worker."""


Settlement = Ack | Retry | DeadLetter | Requeue


def after_error(error: Exception, attempt: int, doing: str) -> Settlement:
    """How a delivery ends when ``doing`` it raised ``error``: decided by the error's type.

    A rejected message is dead-lettered. A :class:`~flows.errors.TransientError` — the
    records or a store not answering, even to put the task back — is retried after the
    backoff and logged as one line. Anything else is a bug or a failure nobody classified:
    logged with its traceback and retried too, until the queue's delivery limit
    dead-letters it.
    """
    if isinstance(error, MessageRejected):
        return DeadLetter(error)
    if isinstance(error, TransientError):
        log.warning("%s: %s; delivering it again later", doing, error)
    else:
        log.error("%s failed; delivering it again later", doing, exc_info=error)
    return Retry(attempt)


class Settler:
    """Applies settlements for one consumer (its dead-letter exchange, metrics and tasks)."""

    def __init__(
        self,
        dead_letters: AbstractExchange,
        routing_key: str,
        metrics: Metrics,
        tasks: SqlTaskRepository,
    ) -> None:
        self._dead_letters = dead_letters
        self._routing_key = routing_key
        self._metrics = metrics
        self._tasks = tasks

    async def apply(self, message: AbstractIncomingMessage, settlement: Settlement) -> None:
        """Ack, nack or dead-letter ``message`` as ``settlement`` says."""
        match settlement:
            case Ack():
                await message.ack()
            case Retry():
                await asyncio.sleep(settlement.backoff_seconds())
                await message.nack(requeue=True)
            case Requeue():
                await message.nack(requeue=True)
            case DeadLetter(rejected):
                await self._dead_letter(message, rejected)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, rejected: MessageRejected
    ) -> None:
        log.error("dead-lettering message %s: %s", message.message_id, rejected)
        self._metrics.dead_lettered(rejected.reason)
        if rejected.task_id is not None:
            with contextlib.suppress(Exception):
                await self._tasks.finish(
                    rejected.task_id,
                    TaskEnd.failure(f"rejected: {rejected.reason}: {rejected.detail}"),
                )
        headers: dict[str, Any] = dict(message.headers or {})
        headers.update({REASON_HEADER: str(rejected.reason), DETAIL_HEADER: rejected.detail})
        try:
            await self._dead_letters.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=self._routing_key,
            )
        except Exception as exc:
            log.error(
                "could not copy message %s to the dead-letter exchange (%s: %s); rejecting it "
                "so the broker dead-letters it without the reason headers",
                message.message_id,
                type(exc).__name__,
                exc,
            )
            await message.reject(requeue=False)
            return
        await message.ack()
