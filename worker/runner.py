"""Running one import task to a terminal state: the daemon and ``imgworker import`` share this.

``run_task`` loads the task row, waits out (or takes over) another worker's claim, builds the
flow for the task's request and runs it, then records exactly one outcome: success, failure
(image ``failed`` unless copy-image, lock released, staging cleared), or — for a transient
failure that may be retried, or a cancellation while draining — the task back to ``pending``
with the lock still held, so the redelivered message resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.context import ImportContext, RequestContext
from flows.engine import FlowFailed
from flows.errors import ImportFailed, LockLost, SafetyRefusal
from flows.import_flow import build_import_flow
from flows.observer import FlowObserver, NullObserver
from flows.records import TaskRecord
from flows.request import ImportRequest, parse_import_request
from flows.steps.complete import remove_staging
from flows.stores.base import Store
from flows.stores.registry import build_store
from flows.targets import resolve_targets
from worker.db.engine import create_engine, create_sessionmaker
from worker.db.images import SqlImageRepository
from worker.db.schema import upgrade
from worker.db.tasks import SqlTaskRepository
from worker.settings import Settings

log = logging.getLogger(__name__)

TERMINAL = ("success", "failure")


@dataclass
class Services:
    """What a worker process holds for its whole life: records, stores, settings, hooks."""

    settings: Settings
    images: SqlImageRepository
    tasks: SqlTaskRepository
    stores: dict[str, Store]
    observer: FlowObserver
    worker_id: str
    _engine: AsyncEngine | None = field(repr=False, default=None)

    @classmethod
    async def open(cls, settings: Settings, observer: FlowObserver | None = None) -> Services:
        """Connect to the database (upgrading the schema if configured) and build the stores."""
        if settings.database.auto_upgrade:
            await upgrade(settings.database.url)
        engine = create_engine(settings.database.url)
        sessions = create_sessionmaker(engine)
        stores = {
            name: build_store(name, config) for name, config in settings.stores.backends.items()
        }
        return cls(
            settings=settings,
            images=SqlImageRepository(sessions),
            tasks=SqlTaskRepository(sessions, lease_seconds=settings.worker.lease_seconds),
            stores=stores,
            observer=observer or NullObserver(),
            worker_id=settings.worker.worker_id(),
            _engine=engine,
        )

    async def ping(self) -> None:
        """Raise unless the database answers (the readiness check)."""
        if self._engine is None:
            raise RuntimeError("no database engine")
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close store connections and the database engine."""
        for store in self.stores.values():
            closer = getattr(store, "close", None)
            if closer is not None:
                await closer()
        if self._engine is not None:
            await self._engine.dispose()


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a run ended: ``success``, ``failure`` or ``retry`` (requeue and try again later)."""

    status: Literal["success", "failure", "retry"]
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
) -> TaskOutcome:
    """Run task ``task_id`` to a recorded outcome (see the module docstring)."""
    task = await _wait_for_claim(services, task_id)
    if task.status in TERMINAL:
        return TaskOutcome(task.status, task.message, "duplicate", ran=False)  # type: ignore[arg-type]
    if task.claimed_by not in (None, services.worker_id):
        services.observer.lock_taken_over()
        log.warning(
            "taking over task %s from %s (no heartbeat within the lease)", task_id, task.claimed_by
        )
    try:
        request, targets = await _plan(services, task)
    except ImportFailed as error:
        await services.tasks.fail(task_id, str(error))
        await _release_lock(services, task)
        return TaskOutcome("failure", str(error), error.reason)
    if not targets:
        message = "nothing to do: every store already has the image"
        await services.tasks.succeed(task_id, {"image_id": task.image_id, "stores": []})
        await _release_lock(services, task)
        return TaskOutcome("success", message)
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
        requester=requester or RequestContext(),
    )
    return await _run_flow(services, ctx, targets, final_attempt)


async def _wait_for_claim(services: Services, task_id: str) -> TaskRecord:
    """Wait while another live worker holds the task; return it once terminal or free/stale."""
    lease = services.settings.worker.lease_seconds
    poll = min(services.settings.worker.heartbeat_seconds, 5.0)
    while True:
        task = await services.tasks.get(task_id)
        if task.status in TERMINAL or task.status != "processing":
            return task
        if task.claimed_by in (None, services.worker_id):
            return task
        if await services.tasks.is_stale(task_id, lease):
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
    flow = build_import_flow(ctx, targets)
    reporter = asyncio.create_task(_report_progress(ctx), name=f"progress-{ctx.task_id}")
    try:
        await flow.run(ctx, services.observer)
    except FlowFailed as failed:
        return await _record_failure(services, ctx, failed, final_attempt)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await services.tasks.requeue(ctx.task_id, "requeued: worker stopping")
        raise
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        if ctx.lease is not None:
            # The heartbeat outlived successful flows and then reported the finished task
            # as "lock preempted".
            await ctx.lease.stop()
    result: dict[str, object] = {
        "image_id": ctx.image_id,
        "stores": list(ctx.written),
        "failed_stores": list(ctx.failed),
    }
    await services.tasks.succeed(ctx.task_id, result)
    await services.images.release_lock(ctx.image_id, ctx.task_id)
    message = f"imported to {', '.join(ctx.written)}"
    if ctx.failed:
        message += f"; failed: {'; '.join(ctx.failed.values())}"
    return TaskOutcome("success", message)


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
    if transient and not final_attempt:
        await services.tasks.requeue(ctx.task_id, f"will retry: {message}")
        return TaskOutcome("retry", message, reason, transient=True)
    if isinstance(error, LockLost):
        # Another task or worker holds the image now and owns its cleanup; only a task that
        # nobody else claimed is closed here.
        task = await services.tasks.get(ctx.task_id)
        if task.status not in TERMINAL and task.claimed_by in (None, services.worker_id):
            await services.tasks.fail(ctx.task_id, message)
        return TaskOutcome("failure", message, reason, transient=False)
    if ctx.lease is not None and not ctx.is_copy:
        await services.images.set_status(ctx.image_id, "failed")
    await services.tasks.fail(ctx.task_id, message)
    await asyncio.to_thread(remove_staging, ctx)
    await services.images.release_lock(ctx.image_id, ctx.task_id)
    return TaskOutcome("failure", message, reason, transient=transient)


async def _release_lock(services: Services, task: TaskRecord) -> None:
    if task.image_id is not None:
        await services.images.release_lock(task.image_id, task.id)


async def _report_progress(ctx: ImportContext) -> None:
    """Write the task's progress message ("Copied N MiB") every few seconds while it runs."""
    last = ""
    while True:
        await asyncio.sleep(ctx.settings.progress_seconds)
        message = ctx.progress.message()
        if message != last:
            try:
                await ctx.tasks.set_message(ctx.task_id, message)
                last = message
            except Exception:
                log.debug("progress message not written", exc_info=True)
