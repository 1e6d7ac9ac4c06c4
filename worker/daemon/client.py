"""The producer's side: take the lock, create the task, publish the message.

:class:`Publisher` is one confirmed broker connection; :class:`LazyPublisher` (the API's and
the sweeper's) connects on first use and reconnects after a failure, so a process that only
sometimes publishes keeps working, and answers reads, while the broker is down.

``enqueue_import`` is what the API service calls for ``POST /v2/images/{id}/import``; the
``imgworker image-import`` command calls it too. Like arq's producer it needs only the records
and the broker settings, never a worker.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from flows.errors import TransientError
from flows.request import ImportRequest
from flows.requester import RequestContext
from worker.broker.connection import LazyConnection
from worker.config.settings import BrokerSettings
from worker.daemon.messages import ENQUEUED_AT, TaskMessage
from worker.daemon.topology import declare
from worker.db.tasks import TaskEnd
from worker.db.usage import Admission
from worker.tasks.services import Records
from worker.tasks.submission import SubmissionRules, announce_run, submit_import

log = logging.getLogger(__name__)


async def enqueue_import(
    records: Records,
    rules: SubmissionRules,
    publisher: ImportPublisher,
    *,
    image_id: str,
    request: ImportRequest,
    requester: RequestContext | None = None,
    admission: Admission | None = None,
    without_worker: Callable[[], None] | None = None,
) -> str:
    """Lock the image, record the task and publish it; return the task id.

    ``admission`` is checked in the transaction that records the task (see ``submit_import``).

    If the message cannot be published, the task is ended failed and the lock released, so
    the image can be imported again: nothing waits for a message that does not exist. If no
    worker consumes the queue, the task's message says it waits for one, a warning is
    logged and ``without_worker`` is called (the API counts it).
    """
    requester = requester or RequestContext()
    task = await submit_import(
        records, rules, image_id=image_id, request=request, requester=requester, admission=admission
    )
    # Before publishing: a worker may claim the task (task.processing) the moment it is out.
    await announce_run(records, task.id)
    try:
        await publisher.publish(TaskMessage(task.id, image_id, request, requester))
    except BaseException as exc:
        await records.tasks.finish(
            task.id,
            TaskEnd.failure(f"not started: the task could not be published: {exc}"),
        )
        raise
    queue = await publisher.unconsumed_queue()
    if queue is not None:
        waiting = waiting_for_worker(queue)
        # Only while still pending: a worker that attached meanwhile writes its own.
        await records.tasks.note_waiting(task.id, waiting)
        log.warning("task %s: %s", task.id, waiting, extra={"task_id": task.id})
        if without_worker is not None:
            without_worker()
    return task.id


def waiting_for_worker(queue: str) -> str:
    """The message of a task published to ``queue`` while no worker consumes it."""
    return (
        f"waiting for a worker: no worker consumes queue {queue} (start imgworker run with "
        "this [broker]); the task runs as soon as one does"
    )


class Publishable(Protocol):
    """A task message: its task id and its body."""

    @property
    def task_id(self) -> str:
        """The task the message runs (the AMQP ``message_id``)."""
        ...

    def to_json(self) -> bytes:
        """The body as published."""
        ...


class TaskPublisher(Protocol):
    """Anything that publishes task messages (a :class:`Publisher`, the API's lazy one)."""

    async def publish(self, message: Publishable) -> None:
        """Publish and wait for the broker's confirm."""
        ...


class ImportPublisher(TaskPublisher, Protocol):
    """A publisher that can also tell whether anyone consumes the task queue."""

    async def unconsumed_queue(self) -> str | None:
        """The task queue's name if no worker consumes it now, else None (also when it cannot
        tell)."""
        ...


class Publisher:
    """One broker connection for many messages, with the topology declared on it.

    ``async with`` connects at once and closes at the end; :meth:`publish` connects first
    when nothing is open (:class:`worker.broker.connection.LazyConnection`).
    """

    def __init__(self, broker: BrokerSettings) -> None:
        self._broker = broker
        self._connection = LazyConnection(broker.url, self._declare)

    async def __aenter__(self) -> Publisher:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _declare(
        self, connection: AbstractConnection
    ) -> tuple[AbstractExchange, AbstractChannel]:
        channel = await connection.channel(publisher_confirms=True)
        exchange, _queue, _dead = await declare(channel, self._broker)
        return exchange, channel

    async def connect(self) -> None:
        """Connect and declare the topology, unless that is done already."""
        await self._connection.get()

    async def close(self) -> None:
        """Close the connection (the next :meth:`publish` opens a new one)."""
        await self._connection.drop()

    async def publish(self, message: Publishable) -> None:
        """Publish one persistent task message and wait for the broker's confirm."""
        exchange, _channel = await self._connection.get()
        await exchange.publish(
            aio_pika.Message(
                message.to_json(),
                message_id=message.task_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.datetime.now(datetime.UTC),
                # AMQP timestamps have whole seconds; queue wait wants microseconds.
                headers={ENQUEUED_AT: time.time_ns() // 1000},
            ),
            routing_key=self._broker.routing_key,
        )

    async def consumers(self) -> int:
        """How many consumers the task queue has now (a passive declare: one round trip)."""
        _exchange, channel = await self._connection.get()
        queue = await channel.declare_queue(self._broker.queue, passive=True)
        result = queue.declaration_result
        return int(result.consumer_count or 0)

    async def unconsumed_queue(self) -> str | None:
        """The task queue's name if it has no consumer now, else None."""
        return self._broker.queue if await self.consumers() == 0 else None


class BrokerUnavailable(TransientError):
    """The task queue cannot take a message now."""

    reason = "broker_unavailable"


class LazyPublisher:
    """A :class:`Publisher` connected on demand and dropped when it fails, whose failures
    are :class:`BrokerUnavailable` (the API's and the sweeper's)."""

    def __init__(self, broker: BrokerSettings) -> None:
        self._publisher = Publisher(broker)

    async def publish(self, message: Publishable) -> None:
        """Publish and wait for the broker's confirm, or raise :class:`BrokerUnavailable`."""
        try:
            await self._publisher.connect()
        except Exception as exc:
            raise BrokerUnavailable(
                f"The task queue (RabbitMQ) is unreachable: {type(exc).__name__}; "
                "try again shortly."
            ) from exc
        try:
            await self._publisher.publish(message)
        except Exception as exc:
            await self._publisher.close()
            log.warning("publishing task %s failed: %s", message.task_id, exc)
            raise BrokerUnavailable(
                f"The task queue is unavailable ({type(exc).__name__}); try again shortly."
            ) from exc

    async def unconsumed_queue(self) -> str | None:
        """The task queue's name if no worker consumes it now; None when one does, or when
        the broker cannot tell now (the import is enqueued either way)."""
        try:
            return await self._publisher.unconsumed_queue()
        except Exception as exc:
            await self._publisher.close()
            log.debug("counting the task queue's consumers failed: %s", exc)
            return None

    async def close(self) -> None:
        """Close the connection if one is open."""
        await self._publisher.close()
