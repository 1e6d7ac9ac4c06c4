"""Accepting an import request: preconditions, target stores, the lock, the task row.

What Glance's API does before a task runs, shared by the broker client (``enqueue``) and the
embedded ``imgworker import``: the request is checked against the image, the target stores are
resolved once (and recorded in the task input as ``backend``), and the image's import lock is
taken for the new task by compare-and-swap before anything is published or run.
"""

from __future__ import annotations

import uuid

from flows.context import RequestContext
from flows.errors import ImageStateConflict
from flows.preconditions import check_can_start
from flows.records import TaskRecord
from flows.request import ImportRequest
from flows.targets import resolve_targets
from worker.db.images import SqlImageRepository
from worker.db.locks import acquire_import_lock
from worker.db.tasks import SqlTaskRepository
from worker.runner import Services

TASK_TYPE = "api_image_import"


async def submit_import(
    images: SqlImageRepository,
    tasks: SqlTaskRepository,
    *,
    image_id: str,
    request: ImportRequest,
    configured_stores: list[str],
    default_store: str,
    lease_seconds: float,
    requester: RequestContext | None = None,
) -> TaskRecord:
    """Create the task for ``request`` holding the image's lock, or raise why it cannot run.

    Raises :class:`flows.errors.ImageStateConflict` when the image is in the wrong state, the
    lock is held by a live task, or (copy-image with ``all_stores``) every store already has
    the image; :class:`flows.errors.InvalidRequest` for unknown stores.
    """
    requester = requester or RequestContext()
    image = await images.get(image_id)
    check_can_start(request, image, resuming=False)
    targets = resolve_targets(request, image, configured_stores, default_store)
    if not targets:
        raise ImageStateConflict(
            f"image {image_id} is already present at every store; there is nothing to copy"
        )
    task_id = str(uuid.uuid4())
    task = await tasks.create(
        task_id=task_id,
        image_id=image_id,
        type=TASK_TYPE,
        input={"image_id": image_id, "import_req": request.to_body(), "backend": targets},
        owner=requester.owner,
        user_id=requester.user_id,
        request_id=requester.request_id,
    )
    try:
        await acquire_import_lock(images, tasks, image_id, task_id, lease_seconds)
    except Exception as exc:
        await tasks.fail(task_id, f"not started: {exc}")
        raise
    return task


async def submit_with(
    services: Services, image_id: str, request: ImportRequest, requester: RequestContext
) -> TaskRecord:
    """:func:`submit_import` with a worker's own records, stores and settings."""
    settings = services.settings
    return await submit_import(
        services.images,
        services.tasks,
        image_id=image_id,
        request=request,
        configured_stores=list(services.stores),
        default_store=settings.stores.default,
        lease_seconds=settings.worker.lease_seconds,
        requester=requester,
    )
