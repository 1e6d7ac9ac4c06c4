"""Running one import task to a terminal state: the daemon and ``imgworker import`` share this.

``run_task`` loads the task row, waits out (or takes over) another worker's claim, holds the
task's lease (the heartbeat) for as long as the flow runs — the flow's first step claims the
task in the transaction that starts the import —, and records exactly one
outcome through :meth:`SqlTaskRepository.finish`: success; failure (image ``failed`` unless
copy-image, lock released, staging cleared); or — for a transient failure that may be
retried, or a cancellation while draining — the task back to ``pending`` with the lock still
held, so the redelivered message resumes it.

The records not answering (:class:`RecordsUnavailable`) is never a reason to fail the task,
even on the last delivery: the task is put back, and when even that cannot be recorded,
``run_task`` raises it and the message is simply delivered again — nothing is recorded
that the outage caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from flows.background import cancel_and_wait
from flows.context import ImportContext
from flows.engine import FlowFailed
from flows.errors import ImportFailed, LockLost, RecordsUnavailable, SafetyRefusal
from flows.import_flow import build_import_flow
from flows.lease import Lease
from flows.progress_message import progress_message
from flows.records import STORE_FAILURES, ImageFormats, TaskRecord
from flows.request import ImportRequest, parse_import_request
from flows.requester import RequestContext
from flows.sources.prefetch import Prefetch
from flows.states import AttemptStatus, ImageStatus, TaskStatus, is_terminal
from flows.steps.complete import remove_staging
from flows.targets import resolve_targets
from worker.db.tasks import TaskEnd
from worker.tasks.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a run ended: ``success``, ``failure`` or ``retry`` (requeue and try again later)."""

    status: AttemptStatus
    message: str
    reason: str = "ok"
    transient: bool = False
    #: Whether this run did the work (False for a duplicate of a finished task).
    ran: bool = True


async def run_task(
    services: Services,
    task_id: str,
    *,
    requester: RequestContext | None = None,
    final_attempt: bool = True,
    known: TaskRecord | None = None,
    prefetch: Prefetch | None = None,
) -> TaskOutcome:
    """Run task ``task_id`` to a recorded outcome (see the module docstring).

    ``known`` is the task as the caller just read it (saves reading it again); ``prefetch``,
    its web-download already under way (the stage step adopts it if it is the request's).
    """
    task = await _wait_for_claim(services, task_id, known)
    if is_terminal(task.status):
        return TaskOutcome(AttemptStatus(task.status), task.message, "duplicate", ran=False)
    if task.claimed_by not in (None, services.worker_id):
        services.observer.lock_taken_over()
        log.warning(
            "taking over task %s from %s (no heartbeat within the lease)", task_id, task.claimed_by
        )
    try:
        request, targets = await _plan(services, task)
    except ImportFailed as error:
        if error.transient:
            raise
        await services.tasks.finish(task_id, TaskEnd.failure(str(error)))
        return TaskOutcome(AttemptStatus.FAILURE, str(error), error.reason)
    if not targets:
        message = "nothing to do: every store already has the image"
        await services.tasks.finish(
            task_id, TaskEnd.success({"image_id": task.image_id, "stores": []}, message)
        )
        return TaskOutcome(AttemptStatus.SUCCESS, message)
    ctx = ImportContext(
        task_id=task_id,
        image_id=str(task.image_id),
        worker_id=services.worker_id,
        request=request,
        images=services.images,
        tasks=services.tasks,
        stores=services.stores,
        default_store=services.settings.stores.default,
        settings=services.settings.flow_settings(),
        observer=services.observer,
        events=services.records.events,
        requester=requester or RequestContext(),
        requested_formats=ImageFormats.from_dict((task.input or {}).get("image_formats")),
        prefetch=prefetch,
    )
    return await _run_flow(services, ctx, targets, final_attempt)


async def _wait_for_claim(services: Services, task_id: str, known: TaskRecord | None) -> TaskRecord:
    """Wait while another live worker holds the task; return it once terminal or free/stale."""
    poll = min(services.settings.worker.heartbeat_seconds, 5.0)
    while True:
        task, known = known or await services.tasks.get(task_id), None
        if task.status != TaskStatus.PROCESSING:
            return task
        if task.claimed_by in (None, services.worker_id):
            return task
        if not await services.tasks.is_alive(task_id):
            return task
        await asyncio.sleep(poll)


async def _plan(services: Services, task: TaskRecord) -> tuple[ImportRequest, list[str]]:
    """The request and target stores of ``task`` (as resolved when it was enqueued)."""
    data = task.input or {}
    request = parse_import_request(data.get("import_req", {}))  # type: ignore[arg-type]
    backend = data.get("backend")
    if isinstance(backend, list) and backend:
        return request, [str(name) for name in backend]
    image = await services.images.get(str(task.image_id))
    settings = services.settings
    targets = resolve_targets(request, image, list(services.stores), settings.stores.default)
    return request, targets


async def _run_flow(
    services: Services, ctx: ImportContext, targets: list[str], final_attempt: bool
) -> TaskOutcome:
    """Run the flow inside the task's lease; record how it ended."""
    flow = build_import_flow(ctx, targets)
    lease = Lease(ctx.images, ctx.tasks, ctx.hold, ctx.settings.heartbeat_seconds)
    try:
        async with lease, _progress_reporter(ctx):
            ctx.lease = lease
            await flow.run(ctx, services.observer)
    except FlowFailed as failed:
        return await _record_failure(services, ctx, failed, final_attempt)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await services.tasks.requeue(ctx.task_id, "requeued: worker stopping")
        raise
    result: dict[str, object] = {
        "image_id": ctx.image_id,
        "stores": list(ctx.written),
        "failed_stores": list(ctx.failed),
        STORE_FAILURES: dict(ctx.failed),
    }
    message = f"imported to {', '.join(ctx.written)}"
    if ctx.failed:
        message += f"; failed: {'; '.join(ctx.failed.values())}"
    await services.tasks.finish(ctx.task_id, TaskEnd.success(result, message))
    return TaskOutcome(AttemptStatus.SUCCESS, message)


async def _record_failure(
    services: Services, ctx: ImportContext, failed: FlowFailed, final_attempt: bool
) -> TaskOutcome:
    error = failed.error
    if isinstance(error, ImportFailed):
        message, reason, transient = f"{failed.step}: {error}", error.reason, error.transient
    else:
        log.error("internal error in step %s", failed.step, exc_info=error)
        message = f"{failed.step}: internal error: {type(error).__name__}: {error}"
        reason, transient = "internal", False
    if isinstance(error, SafetyRefusal):
        services.observer.safety_refusal(error.check)
        reason = error.check
    if isinstance(error, RecordsUnavailable) or (transient and not final_attempt):
        # Raises RecordsUnavailable itself while the database is still down: the message is
        # then delivered again with nothing recorded.
        await services.tasks.requeue(ctx.task_id, f"will retry: {message}")
        return TaskOutcome(AttemptStatus.RETRY, message, reason, transient=True)
    if isinstance(error, LockLost):
        # Another task or worker holds the image now and owns its cleanup; only a task that
        # nobody else claimed is ended here.
        await services.tasks.finish(
            ctx.task_id, TaskEnd.failure(message, claimant=services.worker_id)
        )
        return TaskOutcome(AttemptStatus.FAILURE, message, reason)
    # The lock step recorded the image once it had checked it: only then did this task
    # change the image's status, and only then is it this task's to fail.
    touched_image = ctx.image is not None and not ctx.is_copy
    await asyncio.to_thread(remove_staging, ctx)
    await services.tasks.finish(
        ctx.task_id,
        TaskEnd.failure(
            message,
            image_status=ImageStatus.FAILED if touched_image else None,
            result={STORE_FAILURES: dict(ctx.failed)} if ctx.failed else None,
        ),
    )
    return TaskOutcome(AttemptStatus.FAILURE, message, reason, transient=transient)


@contextlib.asynccontextmanager
async def _progress_reporter(ctx: ImportContext) -> AsyncIterator[None]:
    """Write the task's progress message (:func:`~flows.progress_message.progress_message`)
    every ``progress_seconds`` while it runs, when it changed: a bounded rate of writes."""

    async def report() -> None:
        last = ""
        while True:
            await asyncio.sleep(ctx.settings.progress_seconds)
            message = progress_message(ctx.progress.snapshot())
            if message != last:
                try:
                    await ctx.tasks.set_message(ctx.task_id, message)
                    last = message
                except Exception:
                    log.debug("progress message not written", exc_info=True)

    reporter = asyncio.create_task(report(), name=f"progress-{ctx.task_id}")
    try:
        yield
    finally:
        await cancel_and_wait(reporter)
