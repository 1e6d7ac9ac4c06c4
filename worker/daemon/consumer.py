"""Consuming task messages: one asyncio task per message, ack only at a terminal state.

Each delivery is decided once (a :data:`~worker.daemon.settlement.Settlement`) and settled
in one place (:class:`~worker.daemon.settlement.Settler`):

- QoS prefetch = ``[worker] concurrency``, so a worker never holds more messages than it runs.
- A message that fails its checks is dead-lettered at once, with the reason recorded in the
  dead-letter copy's headers, the log, and the task row when there is one; never retried.
  Whatever is wrong with the body itself (size, encoding, nesting, JSON, fields) is such a
  failure: the next delivery would carry the same bytes.
- A transient failure is retried: the message is nacked back to the queue after a backoff,
  until the quorum queue's delivery limit; the last delivery records the failure instead —
  unless the records themselves did not answer, which never fails a task (see
  :mod:`worker.tasks.runner`). What a delivery raises is settled by its type
  (:func:`~worker.daemon.settlement.after_error`).
- A duplicate of a finished task is acknowledged without work (``run_task`` sees it).
- On drain, running tasks are cancelled after the grace period: ``run_task`` puts the task
  back to ``pending`` and the message is nacked for another worker.

RabbitMQ's consumer timeout (30 min by default) closes a channel whose delivery stays
unacknowledged longer; imports can take longer. The worker tolerates it (the redelivered
copy waits for the live claim and is acked when the task ends), but operators should raise
``consumer_timeout`` above the longest import: see docs/daemon.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.connection import make_url

from flows.errors import NotFound
from flows.records import TaskRecord
from flows.states import AttemptStatus
from worker.daemon.http import Health
from worker.daemon.logs import task_log_context
from worker.daemon.messages import (
    ENQUEUED_AT,
    MessageRejected,
    RejectReason,
    TaskMessage,
    parse_message,
)
from worker.daemon.metrics import Metrics
from worker.daemon.settlement import (
    Ack,
    DeadLetter,
    Requeue,
    Retry,
    Settlement,
    Settler,
    after_error,
)
from worker.daemon.topology import declare
from worker.tasks.deletion import run_delete_task
from worker.tasks.runner import run_task
from worker.tasks.services import Services

log = logging.getLogger(__name__)


class Consumer:
    """Runs the tasks of one worker process."""

    def __init__(self, services: Services, metrics: Metrics, health: Health) -> None:
        self._services = services
        self._metrics = metrics
        self._health = health
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._settler: Settler | None = None
        self._tag: str | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """Tasks running now."""
        return len(self._running)

    async def start(self) -> None:
        """Connect (robustly: reconnects restore the channel and consumer) and consume.

        The first connection is not retried here (the daemon waits for the broker with
        :func:`~worker.daemon.startup.reach`); a failed start leaves nothing open, so it may
        simply be called again.
        """
        settings = self._services.settings
        connection = aio_pika.RobustConnection(make_url(settings.broker.url))
        try:
            await connection.connect(timeout=10)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=settings.worker.concurrency)
            _exchange, queue, dead_letters = await declare(channel, settings.broker)
            self._settler = Settler(
                dead_letters, settings.broker.routing_key, self._metrics, self._services.tasks
            )
            self._tag = await queue.consume(self._on_message)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._queue = connection, queue
        connection.close_callbacks.add(self._on_close)
        connection.reconnect_callbacks.add(self._on_reconnect)
        self._attached(True)
        log.info(
            "consuming %s with concurrency %d", settings.broker.queue, settings.worker.concurrency
        )

    def _attached(self, value: bool) -> None:
        self._health.consumer_attached = value
        self._metrics.consumer_attached(value)

    def _on_close(self, *_args: Any) -> None:
        log.warning("broker connection lost; reconnecting")
        self._attached(False)

    def _on_reconnect(self, *_args: Any) -> None:
        log.info("broker connection restored")
        self._attached(self._tag is not None)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(message), name=f"message-{message.message_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        """Decide how the delivery ends, then settle it: the one place a message is settled."""
        settler = self._settler
        assert settler is not None, "messages arrive only after start()"
        try:
            settlement = await self._decide(message)
            await settler.apply(message, settlement)
        except asyncio.CancelledError:
            # Already settled (an ack before the cancel) makes this a no-op error: ignore it.
            with contextlib.suppress(Exception):
                await asyncio.shield(settler.apply(message, Requeue()))
            raise
        except Exception as exc:
            # The channel closed under us: the broker redelivers the unsettled message.
            log.warning(
                "message %s not settled (%s: %s); the broker will deliver it again",
                message.message_id,
                type(exc).__name__,
                exc,
            )

    async def _decide(self, message: AbstractIncomingMessage) -> Settlement:
        try:
            parsed, task = await self._check(message)
        except MessageRejected as rejected:
            self._metrics.task_received("unknown")
            return DeadLetter(rejected)
        except Exception as error:
            attempt = _delivery_count(message) + 1
            return after_error(error, attempt, f"checking message {message.message_id}")
        return await self._run(message, parsed, task)

    async def _check(self, message: AbstractIncomingMessage) -> tuple[TaskMessage, TaskRecord]:
        """The parsed message and its task, if it and the records it names are sound."""
        broker = self._services.settings.broker
        try:
            parsed = parse_message(
                message.body, list(self._services.stores), broker.max_message_bytes
            )
        except MessageRejected:
            raise
        except Exception as exc:
            # A verdict on the bytes alone: the next delivery would fail the same way.
            log.exception("checking message %s failed unexpectedly", message.message_id)
            raise MessageRejected(RejectReason.UNREADABLE, f"{type(exc).__name__}: {exc}") from exc
        return parsed, await self._check_records(parsed)

    async def _run(
        self, message: AbstractIncomingMessage, parsed: TaskMessage, task: TaskRecord
    ) -> Settlement:
        services = self._services
        method = parsed.label
        self._metrics.task_received(method)
        waited = _queue_wait(message)
        if waited is not None:
            self._metrics.queue_wait(method, waited)
        log.info(
            "task %s: started after %.3f s in the queue",
            parsed.task_id,
            waited if waited is not None else float("nan"),
        )
        attempt = _delivery_count(message) + 1
        final = attempt >= services.settings.broker.delivery_limit
        started = time.monotonic()
        self._metrics.in_progress.inc()
        try:
            with task_log_context(parsed.task_id, parsed.image_id, parsed.context.request_id):
                if parsed.request is None:
                    outcome = await run_delete_task(services, parsed.task_id)
                else:
                    outcome = await run_task(
                        services,
                        parsed.task_id,
                        requester=parsed.context,
                        final_attempt=final,
                        known=task,
                    )
                if outcome.ran:  # a duplicate says so below, not as if it had run again
                    log.info("task %s: %s: %s", parsed.task_id, outcome.status, outcome.message)
        except Exception as error:
            return after_error(error, attempt, f"task {parsed.task_id}")
        finally:
            self._metrics.in_progress.dec()
        if not outcome.ran:
            log.info(
                "task %s already ended (%s): duplicate message acknowledged",
                parsed.task_id,
                outcome.status,
            )
            return Ack()
        self._metrics.task_finished(
            method, outcome.status, outcome.reason, time.monotonic() - started
        )
        # A deferred deletion is pending again and the sweeper publishes it when due: this
        # delivery is done (retrying it here would count against the delivery limit).
        return Retry(attempt) if outcome.status == AttemptStatus.RETRY else Ack()

    async def _check_records(self, parsed: TaskMessage) -> TaskRecord:
        """The task the message names, if the records agree with the message."""
        try:
            task, image_exists = await self._services.tasks.get_with_image(parsed.task_id)
        except NotFound:
            raise MessageRejected(
                RejectReason.MISSING_TASK, f"task {parsed.task_id} does not exist in the database"
            ) from None
        if task.type != parsed.type:
            raise MessageRejected(
                RejectReason.BAD_FIELD,
                f"the message says {parsed.type} but task {task.id} is a {task.type} task",
                parsed.task_id,
            )
        if task.image_id != parsed.image_id:
            raise MessageRejected(
                RejectReason.BAD_FIELD,
                f"the message names image {parsed.image_id} but task {task.id} is for image "
                f"{task.image_id}",
                parsed.task_id,
            )
        if (parsed.context.project_id, parsed.context.user_id) != (task.owner, task.user_id):
            # The API recorded who asked; a message may not speak for anyone else.
            raise MessageRejected(
                RejectReason.BAD_FIELD,
                f"the message's context names project {parsed.context.project_id!r} and user "
                f"{parsed.context.user_id!r} but task {task.id} was recorded for project "
                f"{task.owner!r} and user {task.user_id!r}",
                parsed.task_id,
            )
        # A deletion runs whatever became of the image (it is usually gone).
        if parsed.request is not None and not image_exists:
            raise MessageRejected(
                RejectReason.MISSING_IMAGE,
                f"image {parsed.image_id} does not exist",
                parsed.task_id,
            )
        return task

    async def stop_consuming(self) -> None:
        """Stop taking new messages (the first step of a drain)."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        self._tag = None
        self._attached(False)

    async def drain(self, grace: float) -> None:
        """Stop consuming, give running tasks ``grace`` seconds, then requeue the rest."""
        await self.stop_consuming()
        if self._running:
            log.info("draining: %d task(s) running, %.0f s grace", len(self._running), grace)
            _done, pending = await asyncio.wait(set(self._running), timeout=grace)
            await self.cancel_running(pending)

    async def cancel_running(self, tasks: set[asyncio.Task[None]] | None = None) -> None:
        """Cancel running tasks now: each reverts, goes back to pending, and is nacked."""
        pending = set(self._running) if tasks is None else tasks
        if not pending:
            return
        log.warning("cancelling %d running task(s); they will run again elsewhere", len(pending))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """Close the broker connection (a close asked for here is no loss to report)."""
        if self._connection is not None:
            self._connection.close_callbacks.discard(self._on_close)
            self._attached(False)
            await self._connection.close()


def _delivery_count(message: AbstractIncomingMessage) -> int:
    """How many times the quorum queue delivered this message before (its header)."""
    value = (message.headers or {}).get("x-delivery-count")
    return value if isinstance(value, int) else 0


def _queue_wait(message: AbstractIncomingMessage) -> float | None:
    """Seconds since the message was published (precise header, else the AMQP timestamp)."""
    sent = (message.headers or {}).get(ENQUEUED_AT)
    if isinstance(sent, int):
        return max(0.0, (time.time_ns() // 1000 - sent) / 1e6)
    if message.timestamp is None:
        return None
    stamp = message.timestamp
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return max(0.0, (datetime.datetime.now(datetime.UTC) - stamp).total_seconds())
