"""Accepting an import request: preconditions, target stores, the lock, the task row.

What Glance's API does before a task runs, shared by the API service, the broker client
(``enqueue_import``) and the embedded ``imgworker import``: the request is checked against the
image, the target stores are resolved once (and recorded in the task input as ``backend``),
and the image's import lock is taken for the new task by compare-and-swap before anything is
published or run. It needs only the records and a few settings, never a worker.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from flows.context import RequestContext
from flows.errors import ImageStateConflict, LockHeld
from flows.preconditions import check_can_start
from flows.records import ImageFormats, ImageRecord, TaskRecord
from flows.request import ImportRequest
from flows.states import LocationStatus, TaskType
from flows.targets import resolve_targets
from worker.config.settings import Settings
from worker.db.locks import acquire_import_lock
from worker.db.tasks import NewTask, TaskEnd
from worker.tasks.services import Records

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmissionRules:
    """The settings that decide whether and where an import may run."""

    configured_stores: tuple[str, ...]
    default_store: str
    lease_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmissionRules:
        """The rules of a configuration."""
        return cls(
            configured_stores=tuple(settings.stores.backends),
            default_store=settings.stores.default,
            lease_seconds=settings.worker.lease_seconds,
        )


async def submit_import(
    records: Records,
    rules: SubmissionRules,
    *,
    image_id: str,
    request: ImportRequest,
    requester: RequestContext | None = None,
) -> TaskRecord:
    """Create the task for ``request`` holding the image's lock, or raise why it cannot run.

    Raises :class:`flows.errors.NotFound` for an unknown image,
    :class:`flows.errors.ImageStateConflict` when the image is in the wrong state, the lock is
    held by a live task, or (copy-image with ``all_stores``) every store already has the image;
    :class:`flows.errors.UnknownStore` for unknown stores.
    """
    requester = requester or RequestContext()

    def task_for(image: ImageRecord) -> NewTask:
        """The new task's fields, once the image may be imported as asked."""
        check_can_start(request, image, resuming=False)
        targets = resolve_targets(request, image, rules.configured_stores, rules.default_store)
        if not targets:
            raise ImageStateConflict(
                f"image {image_id} is already present at every store; there is nothing to copy"
            )
        leaving = sorted(
            {loc.store for loc in image.locations if loc.status == LocationStatus.PENDING_DELETE}
            & set(targets)
        )
        if leaving:
            raise ImageStateConflict(
                f"image {image_id}'s data is still being removed from store(s) "
                f"{', '.join(leaving)}; import there again once that deletion has finished"
            )
        return {
            "task_id": str(uuid.uuid4()),
            "image_id": image_id,
            "type": TaskType.IMPORT,
            "input": {
                "image_id": image_id,
                "import_req": request.to_body(),
                "backend": targets,
                # What the image was before a conversion records what the stores hold: a
                # task resumed after its worker died restores these before it inspects the
                # bits again.
                "image_formats": ImageFormats.of(image).to_dict(),
            },
            "owner": requester.owner,
            "user_id": requester.user_id,
            "request_id": requester.request_id,
        }

    try:
        # The usual case, the lock free: checked, and the task made with its lock, in one
        # transaction.
        return await records.tasks.create_holding_lock(image_id, task_for)
    except (LockHeld, IntegrityError):
        pass
    fields = task_for(await records.images.get(image_id))
    # Held (or just taken): a task of its own, then the lock by compare-and-swap, taking it
    # over from a task that stopped heartbeating.
    task = await records.tasks.create(**fields)
    try:
        await acquire_import_lock(
            records.images, records.tasks, image_id, task.id, rules.lease_seconds
        )
    except BaseException as exc:
        await records.tasks.finish(task.id, TaskEnd.failure(f"not started: {exc}"))
        raise
    return task


async def announce_run(records: Records, task_id: str) -> None:
    """Record ``task.run`` once the task is handed over (published, or run in this process).

    The task runs whether or not this could be recorded: it is only logged.
    """
    try:
        await records.tasks.announce_run(task_id)
    except Exception:
        log.warning("task.run of task %s not recorded", task_id, exc_info=True)
