"""The task's hold on its image: the lock property plus the claim, kept alive by a heartbeat."""

from __future__ import annotations

import asyncio
import logging
import time

from flows.background import cancel_and_wait
from flows.errors import LockLost, TransientError
from flows.ports import ImageRepository, TaskRepository
from flows.records import Hold

log = logging.getLogger(__name__)

#: A hold confirmed this recently is not looked up again before a write. Nobody can take it
#: over that fast (a takeover waits for the lease to expire without a heartbeat), and every
#: write the hold guards checks it again in its own transaction; only a write that would be
#: thrown away (its data deleted at once) could start on a hold lost meanwhile.
FRESH_SECONDS = 1.0


class Lease:
    """Heartbeats the claimed task on a timer and checks, before each write, that it still holds.

    ``async with lease:`` starts and stops the heartbeat in one visible scope: whoever enters
    it (the runner, around the whole flow) is the only one that stops it.
    """

    def __init__(
        self, images: ImageRepository, tasks: TaskRepository, hold: Hold, interval: float
    ) -> None:
        self._images = images
        self._tasks = tasks
        #: The image lock and the claim this lease keeps.
        self._hold = hold
        self._interval = interval
        self._heartbeat: asyncio.Task[None] | None = None
        self._lost: str | None = None
        self._confirmed_at = -FRESH_SECONDS

    async def __aenter__(self) -> Lease:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    def _start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(
                self._beat(), name=f"heartbeat-{self._hold.task_id}"
            )

    async def _stop(self) -> None:
        if self._heartbeat is not None:
            await cancel_and_wait(self._heartbeat)
            self._heartbeat = None

    def confirmed(self) -> None:
        """The hold was just checked, in a transaction that wrote under it."""
        self._confirmed_at = time.monotonic()

    async def check(self) -> None:
        """Raise :class:`LockLost` unless this task still holds the image lock and its claim
        (not looked up again within :data:`FRESH_SECONDS` of a confirmation)."""
        if self._lost is not None:
            raise LockLost(self._lost)
        if time.monotonic() - self._confirmed_at < FRESH_SECONDS:
            return
        try:
            await self._images.assert_hold(self._hold)
        except LockLost as lost:
            self._lost = str(lost)
            raise
        self.confirmed()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if not await self._tasks.heartbeat(self._hold.task_id, self._hold.worker_id):
                    self._lost = f"task {self._hold.task_id} lost its claim: lock preempted"
                    log.warning("%s", self._lost)
                    return
            except TransientError as exc:
                # A missed beat is not fatal: the lease is several beats long.
                log.warning("heartbeat of task %s missed: %s", self._hold.task_id, exc)
            except Exception:
                log.warning("heartbeat of task %s failed", self._hold.task_id, exc_info=True)
