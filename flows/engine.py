"""A linear flow of steps: run in order, revert the executed ones in reverse on failure.

A place in the flow may hold a :class:`Parallel` group: steps that run at the same time,
each still timed, reported and reverted as a step of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, Protocol, TypeVar

from flows.errors import NotFound, TransientError
from flows.states import StepResult

ContextT = TypeVar("ContextT")
ContextT_contra = TypeVar("ContextT_contra", contravariant=True)

log = logging.getLogger(__name__)


class Step(Protocol[ContextT_contra]):
    """One unit of a flow: ``execute`` does it, ``revert`` undoes it after a later failure."""

    @property
    def name(self) -> str:
        """A low-cardinality name (a metric label): ``stage``, ``store:central``, ..."""
        ...

    async def execute(self, ctx: ContextT_contra) -> None:
        """Do the step's work."""
        ...

    async def revert(self, ctx: ContextT_contra, error: BaseException) -> None:
        """Undo what ``execute`` did; called only for steps whose execute ended (or failed)."""
        ...


class StepTimer(Protocol):
    """Receives each step's duration and outcome."""

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """Called once per executed or reverted step."""


class FlowFailed(Exception):
    """A step failed and the flow was reverted; ``step`` names it, ``error`` is the cause."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


class Parallel(Generic[ContextT]):
    """Steps that run at the same time, in one place of a flow (taskflow's unordered flow).

    Each member is timed and reported under its own name when it ends, and reverted on its
    own like any executed step. The first member that fails cancels the members still
    running; the flow then fails naming that member. ``scope(ctx)``, when given, is entered
    around the members' run: what they share (one read of the data, for instance) lives there.
    """

    def __init__(
        self,
        steps: Sequence[Step[ContextT]],
        scope: Callable[[ContextT], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.steps = list(steps)
        self.scope = scope

    @property
    def name(self) -> str:
        """The members' names joined with ``+`` (logs only: members report themselves)."""
        return "+".join(step.name for step in self.steps)


class _MemberFailed(Exception):
    """Internal: member ``step`` of a parallel group failed with ``error``."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(step)
        self.step = step
        self.error = error


class Flow(Generic[ContextT]):
    """An ordered list of steps (or :class:`Parallel` groups) sharing one context."""

    def __init__(self, name: str, steps: Sequence[Step[ContextT] | Parallel[ContextT]]) -> None:
        self.name = name
        self.steps = list(steps)

    async def run(self, ctx: ContextT, timer: StepTimer) -> None:
        """Run every step; on failure revert the executed ones and raise :class:`FlowFailed`.

        The failing step is reverted too (it may have done half its work); in a parallel
        group, every member is (each may have). Cancellation is a failure like any other:
        the flow is reverted and ``CancelledError`` propagates.
        """
        done: list[Step[ContextT]] = []
        for step in self.steps:
            if isinstance(step, Parallel):
                await self._run_parallel(step, ctx, timer, done)
                continue
            started = time.monotonic()
            try:
                await step.execute(ctx)
            except BaseException as error:
                timer.step_finished(step.name, time.monotonic() - started, StepResult.FAILURE)
                await self._revert([*done, step], ctx, error, timer)
                if isinstance(error, Exception):
                    raise FlowFailed(step.name, error) from error
                raise
            timer.step_finished(step.name, time.monotonic() - started, StepResult.SUCCESS)
            done.append(step)

    async def _run_parallel(
        self,
        group: Parallel[ContextT],
        ctx: ContextT,
        timer: StepTimer,
        done: list[Step[ContextT]],
    ) -> None:
        """Run the group's members at once; on failure revert everything and raise."""
        try:
            scope = group.scope(ctx) if group.scope else contextlib.nullcontext()
            async with scope:
                await _run_members(group.steps, ctx, timer)
        except _MemberFailed as failed:
            await self._revert([*done, *group.steps], ctx, failed.error, timer)
            if isinstance(failed.error, Exception):
                raise FlowFailed(failed.step, failed.error) from failed.error
            raise failed.error from None
        except BaseException as error:
            await self._revert([*done, *group.steps], ctx, error, timer)
            if isinstance(error, Exception):
                raise FlowFailed(group.name, error) from error
            raise
        done.extend(group.steps)

    async def _revert(
        self,
        executed: list[Step[ContextT]],
        ctx: ContextT,
        error: BaseException,
        timer: StepTimer,
    ) -> None:
        for step in reversed(executed):
            started = time.monotonic()
            try:
                await step.revert(ctx, error)
            except Exception as failure:
                # A revert that fails must not hide the original error, nor stop the others.
                # An outage (the records, a store) is one line: the task is retried later.
                if isinstance(failure, NotFound):
                    # What the revert would undo is gone (the image was deleted meanwhile):
                    # nothing is left to undo, which is what reverting wants.
                    log.info("revert of step %s: nothing to undo: %s", step.name, failure)
                    timer.step_finished(step.name, time.monotonic() - started, StepResult.REVERTED)
                    continue
                if isinstance(failure, TransientError):
                    log.warning("revert of step %s failed: %s", step.name, failure)
                else:
                    log.exception("revert of step %s failed", step.name)
                timer.step_finished(step.name, time.monotonic() - started, StepResult.REVERT_FAILED)
            else:
                timer.step_finished(step.name, time.monotonic() - started, StepResult.REVERTED)


async def _run_members(steps: list[Step[ContextT]], ctx: ContextT, timer: StepTimer) -> None:
    """Execute ``steps`` concurrently; the first failure cancels the rest and is raised."""

    async def member(step: Step[ContextT]) -> None:
        started = time.monotonic()
        try:
            await step.execute(ctx)
        except BaseException as error:
            timer.step_finished(step.name, time.monotonic() - started, StepResult.FAILURE)
            raise _MemberFailed(step.name, error) from error
        timer.step_finished(step.name, time.monotonic() - started, StepResult.SUCCESS)

    tasks = [asyncio.create_task(member(step), name=step.name) for step in steps]
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
