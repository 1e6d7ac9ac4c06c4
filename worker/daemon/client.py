"""The API layer's side: take the lock, create the task, publish the message.

``enqueue_import`` is what an API server calls after ``POST /v2/images/{id}/import``; the
``imgworker image-import`` command calls it too.
"""

from __future__ import annotations

import datetime

import aio_pika

from flows.context import RequestContext
from flows.request import ImportRequest
from worker.daemon.messages import TaskMessage
from worker.daemon.topology import declare
from worker.runner import Services
from worker.submission import submit_import


async def enqueue_import(
    services: Services,
    *,
    image_id: str,
    request: ImportRequest,
    requester: RequestContext | None = None,
) -> str:
    """Lock the image, record the task and publish it; return the task id.

    If the message cannot be published, the task is marked failed and the lock released, so
    the image can be imported again: nothing waits for a message that does not exist.
    """
    settings = services.settings
    requester = requester or RequestContext()
    task = await submit_import(
        services.images,
        services.tasks,
        image_id=image_id,
        request=request,
        configured_stores=list(services.stores),
        default_store=settings.stores.default,
        lease_seconds=settings.worker.lease_seconds,
        requester=requester,
    )
    message = TaskMessage(task.id, image_id, request, requester)
    try:
        await publish(services, message)
    except BaseException as exc:
        await services.tasks.fail(task.id, f"not started: the task could not be published: {exc}")
        await services.images.release_lock(image_id, task.id)
        raise
    return task.id


async def publish(services: Services, message: TaskMessage) -> None:
    """Publish one persistent task message with publisher confirms."""
    broker = services.settings.broker
    connection = await aio_pika.connect(broker.url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange, _queue, _dead = await declare(channel, broker)
        await exchange.publish(
            aio_pika.Message(
                message.to_json(),
                message_id=message.task_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.datetime.now(datetime.UTC),
            ),
            routing_key=broker.routing_key,
        )
