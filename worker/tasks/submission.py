"""Accepting an import request: preconditions, target stores, the lock, the task row.

What Glance's API does before a task runs, shared by the API service, the broker client
(``enqueue_import``) and the embedded ``imgworker import``: the request is checked against the
image, the target stores are resolved once (and recorded in the task input as ``backend``),
and the new task is recorded holding the image's import lock (:mod:`worker.db.locks`) before
anything is published or run. It needs only the records and a few settings, never a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flows.errors import ImageStateConflict
from flows.preconditions import check_can_start
from flows.records import ImageFormats, ImageRecord, TaskRecord
from flows.request import ImportRequest
from flows.requester import RequestContext
from flows.states import LocationStatus, TaskType
from flows.targets import resolve_targets
from worker.config.settings import Settings
from worker.db.tasks import NewTask
from worker.db.usage import Admission
from worker.tasks.services import Records

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmissionRules:
    """The settings that decide whether and where an import may run."""

    configured_stores: tuple[str, ...]
    default_store: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmissionRules:
        """The rules of a configuration."""
        return cls(
            configured_stores=tuple(settings.stores.backends),
            default_store=settings.stores.default,
        )


async def submit_import(
    records: Records,
    rules: SubmissionRules,
    *,
    image_id: str,
    request: ImportRequest,
    requester: RequestContext | None = None,
    admission: Admission | None = None,
) -> TaskRecord:
    """Create the task for ``request`` holding the image's lock, or raise why it cannot run.

    ``admission`` (the API's limits) runs in the same transaction, once the request may run.

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
        return NewTask(
            type=TaskType.IMPORT,
            image_id=image_id,
            input={
                "image_id": image_id,
                "import_req": request.to_body(),
                "backend": targets,
                # What the image was before a conversion records what the stores hold: a
                # task resumed after its worker died restores these before it inspects the
                # bits again.
                "image_formats": ImageFormats.of(image).to_dict(),
            },
            requester=requester,
        )

    return await records.locks.take_for_new_task(image_id, task_for, admission)


async def announce_run(records: Records, task_id: str) -> None:
    """Record ``task.run`` once the task is handed over (published, or run in this process).

    The task runs whether or not this could be recorded: it is only logged.
    """
    try:
        await records.tasks.announce_run(task_id)
    except Exception:
        log.warning("task.run of task %s not recorded", task_id, exc_info=True)
