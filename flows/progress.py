"""What an import is doing now: its step, and for each phase that moves bytes, done of total.

:class:`Progress` is a :class:`~flows.observer.FlowObserver` (the context tees the flow's
observer into it), so it counts exactly what the metrics and the terminal's bars count, from
any thread. :meth:`Progress.snapshot` gives an immutable picture; turning one into the task's
message is :mod:`flows.progress_message`'s job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flows.states import StepResult


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    """One phase that moves bytes: ``stage``, ``convert``, ``store:NAME`` or ``checksums``."""

    phase: str
    done: int
    #: Bytes it goes through, when known (a download may not say).
    total: int | None
    #: Whether it ended (its step finished, or all its bytes are done).
    ended: bool
    #: Whether it ended failing (a store whose write failed).
    failed: bool = False


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """An import's progress at one moment."""

    #: What the flow is doing when no bytes move (``inspecting``, ``verifying signature``).
    step: str
    #: The phases that moved bytes, in the order they started.
    phases: tuple[PhaseProgress, ...]


class Progress:
    """Thread-safe record of an import's phases (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[str, list[int | None]] = {}
        self._ended: set[str] = set()
        self._failed: set[str] = set()
        #: Set by a step that moves no bytes (``inspecting``), shown while none does.
        self.phase = "starting"

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """A phase began (again: a retried store write starts from zero)."""
        with self._lock:
            self._phases.pop(phase, None)
            self._phases[phase] = [0, total_bytes]
            self._ended.discard(phase)
            self._failed.discard(phase)

    def phase_advanced(self, phase: str, count: int) -> None:
        """``count`` more bytes of ``phase`` are done."""
        with self._lock:
            counts = self._phases.setdefault(phase, [0, None])
            counts[0] = (counts[0] or 0) + count

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """A step ended: its phase, if it has one, moves no more bytes."""
        with self._lock:
            if step in self._phases:
                self._ended.add(step)

    def snapshot(self) -> ProgressSnapshot:
        """The progress now."""
        with self._lock:
            phases = tuple(
                PhaseProgress(
                    name,
                    done or 0,
                    total,
                    name in self._ended or (total is not None and (done or 0) >= total),
                    name in self._failed,
                )
                for name, (done, total) in self._phases.items()
            )
        return ProgressSnapshot(self.phase, phases)

    # The rest of FlowObserver: nothing here to count.

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Counted as the ``stage`` phase."""

    def bytes_written(self, store: str, count: int) -> None:
        """Counted as the store's phase."""

    def bytes_skipped(self, store: str, count: int) -> None:
        """Counted as the store's phase."""

    def store_write(self, store: str, result: str) -> None:
        """A store's write ended: a failed one is said to have failed, not to be written."""
        if result == StepResult.FAILURE:
            with self._lock:
                self._failed.add(f"store:{store}")
                self._ended.add(f"store:{store}")

    def safety_refusal(self, check: str) -> None:
        """Not progress."""

    def lock_taken_over(self) -> None:
        """Not progress."""
