"""The embedded way: run the import flow in this process, with no broker.

``imgworker import`` and ``imgworker copy`` call these. Usage from Python::

    settings = load_settings()
    services = await Services.open(settings)
    try:
        result = await import_image(services, file=Path("disk.qcow2"), disk_format="qcow2",
                                    stores=["central", "dcn0"], allow_failure=True)
        print(result.outcome.status, result.image.status, result.image.stores)
    finally:
        await services.close()

The flow is exactly the daemon's: the request is submitted (lock taken, task row created)
then run by :func:`worker.tasks.runner.run_task`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.errors import InvalidRequest, SafetyRefusal, UnknownStore
from flows.records import ImageRecord, TaskRecord
from flows.request import (
    COPY_IMAGE,
    GLANCE_DIRECT,
    WEB_DOWNLOAD,
    ExpectedChecksum,
    ImportRequest,
)
from flows.requester import RequestContext
from flows.sources.prefetch import Prefetch
from flows.uri_filter import vet_uri
from worker.db.catalog import NewImage
from worker.tasks.deletion import run_delete_task
from worker.tasks.runner import TaskOutcome, run_task
from worker.tasks.services import Services
from worker.tasks.staging import stage_upload
from worker.tasks.submission import SubmissionRules, announce_run, submit_import

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddedResult:
    """The image and task as they ended, and how the run went."""

    image: ImageRecord
    task: TaskRecord
    outcome: TaskOutcome


async def import_image(
    services: Services,
    *,
    disk_format: str,
    file: Path | None = None,
    uri: str | None = None,
    checksum: ExpectedChecksum | None = None,
    container_format: str = "bare",
    name: str | None = None,
    stores: Sequence[str] = (),
    all_stores: bool = False,
    allow_failure: bool = True,
    requester: RequestContext | None = None,
    prefetch: Prefetch | None = None,
) -> EmbeddedResult:
    """Create an image record and import ``file`` (glance-direct) or ``uri`` (web-download).

    ``checksum`` is the expected checksum of the downloaded bits (web-download only);
    ``prefetch``, that download already started by the caller, who closes it after.
    """
    if (file is None) == (uri is None):
        raise InvalidRequest("give exactly one source: a file or a URI")
    if uri is not None:
        # Refused before anything is recorded: no image is left behind for a URI that
        # could never be imported (the stage step checks it again, redirects included).
        try:
            await vet_uri(uri, services.settings.safety)
        except SafetyRefusal as refusal:
            services.observer.safety_refusal(refusal.check)
            raise
    requester = requester or RequestContext()
    image = await services.records.catalog.create(
        NewImage(
            owner=requester.project_id,
            name=name or (file.name if file else uri),
            disk_format=disk_format,
            container_format=container_format,
        )
    )
    request = ImportRequest(
        method=GLANCE_DIRECT if file is not None else WEB_DOWNLOAD,
        uri=uri,
        checksum=checksum,
        stores=tuple(stores),
        all_stores=all_stores,
        all_stores_must_succeed=not allow_failure,
    )
    try:
        if file is not None:
            await stage_upload(
                services.images, services.settings.staging.dir, image.id, file, services.observer
            )
        task = await _submit(services, image.id, request, requester)
    except Exception:
        # The file never made it in (the staging area is full, say), or the request was
        # refused (an unknown store): nothing is left behind, not even the image made for it.
        await _forget(services, image.id)
        raise
    return await _run(services, task, requester, prefetch)


async def copy_image(
    services: Services,
    image_id: str,
    *,
    stores: Sequence[str] = (),
    all_stores: bool = False,
    allow_failure: bool = True,
    requester: RequestContext | None = None,
) -> EmbeddedResult:
    """Copy an active image's data to more stores."""
    request = ImportRequest(
        method=COPY_IMAGE,
        stores=tuple(stores),
        all_stores=all_stores,
        all_stores_must_succeed=not allow_failure,
    )
    return await _submit_and_run(services, image_id, request, requester or RequestContext())


async def delete_image(services: Services, image_id: str) -> TaskOutcome | None:
    """Delete an image now and remove its data in this process (``imgworker image-delete``).

    Returns how removing the data went, or None when the image had no data.
    """
    deletion = await services.records.catalog.delete(image_id, RequestContext())
    if deletion.task is None:
        return None
    return await run_delete_task(services, deletion.task.id)


async def delete_from_store(services: Services, image_id: str, store: str) -> TaskOutcome:
    """Remove an image's data from one store in this process (``imgworker stores-delete``)."""
    if store not in services.stores:
        raise UnknownStore(
            f"unknown store {store}; configured stores: {', '.join(sorted(services.stores))}"
        )
    task = await services.records.catalog.delete_from_store(image_id, store, RequestContext())
    return await run_delete_task(services, task.id)


async def _forget(services: Services, image_id: str) -> None:
    """Delete the image ``import_image`` made, when its data or request was refused."""
    try:
        await delete_image(services, image_id)
    except Exception:
        log.warning("image %s, made for an import that was refused, remains", image_id)


async def _submit_and_run(
    services: Services, image_id: str, request: ImportRequest, requester: RequestContext
) -> EmbeddedResult:
    task = await _submit(services, image_id, request, requester)
    return await _run(services, task, requester)


async def _submit(
    services: Services, image_id: str, request: ImportRequest, requester: RequestContext
) -> TaskRecord:
    """Take the image's lock and record the task, as the API does before publishing."""
    rules = SubmissionRules.from_settings(services.settings)
    task = await submit_import(
        services.records, rules, image_id=image_id, request=request, requester=requester
    )
    await announce_run(services.records, task.id)
    return task


async def _run(
    services: Services,
    task: TaskRecord,
    requester: RequestContext,
    prefetch: Prefetch | None = None,
) -> EmbeddedResult:
    """Run the submitted ``task`` here; the image and task as they ended."""
    outcome = await run_task(
        services, task.id, requester=requester, final_attempt=True, prefetch=prefetch
    )
    image_id = str(task.image_id)
    return EmbeddedResult(
        image=await services.images.get(image_id),
        task=await services.tasks.get(task.id),
        outcome=outcome,
    )
