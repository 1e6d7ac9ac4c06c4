"""A linear flow of steps: run in order, revert the executed ones in reverse on failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

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


class Flow(Generic[ContextT]):
    """An ordered list of steps sharing one context."""

    def __init__(self, name: str, steps: Sequence[Step[ContextT]]) -> None:
        self.name = name
        self.steps = list(steps)

    async def run(self, ctx: ContextT, timer: StepTimer) -> None:
        """Run every step; on failure revert the executed ones and raise :class:`FlowFailed`.

        The failing step is reverted too (it may have done half its work). Cancellation is a
        failure like any other: the flow is reverted and ``CancelledError`` propagates.
        """
        done: list[Step[ContextT]] = []
        for step in self.steps:
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
            except Exception:
                # A revert that fails must not hide the original error, nor stop the others.
                log.exception("revert of step %s failed", step.name)
                timer.step_finished(step.name, time.monotonic() - started, StepResult.REVERT_FAILED)
            else:
                timer.step_finished(step.name, time.monotonic() - started, StepResult.REVERTED)
