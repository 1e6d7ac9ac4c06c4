"""Enqueueing imports from a test with a worker's own records and settings."""

from __future__ import annotations

from flows.request import ImportRequest
from flows.requester import RequestContext
from worker.daemon.client import Publisher, enqueue_import
from worker.daemon.messages import TaskMessage
from worker.tasks.services import Services
from worker.tasks.submission import SubmissionRules


async def enqueue(
    services: Services,
    image_id: str,
    request: ImportRequest,
    publisher: Publisher | None = None,
) -> str:
    """Lock, record and publish an import of ``image_id``; return the task id."""
    if publisher is None:
        async with Publisher(services.settings.broker) as own:
            return await enqueue(services, image_id, request, own)
    return await enqueue_import(
        services.records,
        SubmissionRules.from_settings(services.settings),
        publisher,
        image_id=image_id,
        request=request,
        requester=RequestContext(),
    )


async def publish(services: Services, message: TaskMessage) -> None:
    """Publish one task message as it is (no lock, no task row)."""
    async with Publisher(services.settings.broker) as publisher:
        await publisher.publish(message)
