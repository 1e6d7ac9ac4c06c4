"""The API layer's side: take the lock, create the task, publish the message.

``enqueue_import`` is what an API server calls after ``POST /v2/images/{id}/import``; the
``imgworker image-import`` command calls it too.
"""

from __future__ import annotations

import datetime
import time

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange

from flows.context import RequestContext
from flows.request import ImportRequest
from worker.daemon.messages import ENQUEUED_AT, TaskMessage
from worker.daemon.topology import declare
from worker.runner import Services
from worker.settings import BrokerSettings
from worker.submission import submit_with


async def enqueue_import(
    services: Services,
    *,
    image_id: str,
    request: ImportRequest,
    requester: RequestContext | None = None,
    publisher: Publisher | None = None,
) -> str:
    """Lock the image, record the task and publish it; return the task id.

    If the message cannot be published, the task is marked failed and the lock released, so
    the image can be imported again: nothing waits for a message that does not exist.
    """
    requester = requester or RequestContext()
    task = await submit_with(services, image_id, request, requester)
    message = TaskMessage(task.id, image_id, request, requester)
    try:
        if publisher is not None:
            await publisher.publish(message)
        else:
            await publish(services, message)
    except BaseException as exc:
        await services.tasks.fail(task.id, f"not started: the task could not be published: {exc}")
        await services.images.release_lock(image_id, task.id)
        raise
    return task.id


async def publish(services: Services, message: TaskMessage) -> None:
    """Publish one task message on a connection of its own (see :class:`Publisher`)."""
    async with Publisher(services.settings.broker) as publisher:
        await publisher.publish(message)


class Publisher:
    """One broker connection for many messages (an API server keeps one open)."""

    def __init__(self, broker: BrokerSettings) -> None:
        self._broker = broker
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def __aenter__(self) -> Publisher:
        self._connection = await aio_pika.connect(self._broker.url, timeout=10)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange, _queue, _dead = await declare(channel, self._broker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish(self, message: TaskMessage) -> None:
        """Publish one persistent task message and wait for the broker's confirm."""
        assert self._exchange is not None, "use Publisher as an async context manager"
        broker = self._broker
        await self._exchange.publish(
            aio_pika.Message(
                message.to_json(),
                message_id=message.task_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.datetime.now(datetime.UTC),
                # AMQP timestamps have whole seconds; queue wait wants microseconds.
                headers={ENQUEUED_AT: time.time_ns() // 1000},
            ),
            routing_key=broker.routing_key,
        )
