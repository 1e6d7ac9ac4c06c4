"""Progress on a terminal for the embedded commands: one line per step, live byte bars."""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from flows.states import StepResult

if TYPE_CHECKING:
    from worker.cli.progress_bar import ByteBars

#: How a step's result is printed (any other result as it is).
_MARKS: dict[str, str] = {StepResult.SUCCESS: "ok", StepResult.FAILURE: "FAILED"}


class TerminalProgress:
    """A :class:`flows.observer.FlowObserver` that shows an import as it runs.

    Step results are printed as each step ends. On a terminal, while a step moves bytes
    (stage, convert, each store write), a bar shows bytes done of the total, percent, rate
    and time left (:mod:`worker.cli.progress_bar`, imported only then). On anything else (a
    pipe, a file, ``TERM=dumb``) only the step lines are written, with no escape codes.
    Use it as a context manager: leaving it stops the drawing.
    """

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._live = stream.isatty() and os.environ.get("TERM") != "dumb"
        self._lock = threading.Lock()
        self._bars: ByteBars | None = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            if self._bars is not None:
                self._bars.close()
                self._bars = None

    def step_finished(self, step: str, seconds: float, result: str) -> None:
        """Print the step and how it ended (after its bar's last state)."""
        mark = _MARKS.get(result, result)
        line = f"  {step:<24} {mark:<14} {seconds:7.1f} s"
        with self._lock:
            if self._bars is not None:
                self._bars.finish(step)
                self._bars.print(line)
            else:
                self._stream.write(line + "\n")
                self._stream.flush()

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Draw a bar for the phase (on a terminal)."""
        if not self._live:
            return
        with self._lock:
            if self._bars is None:
                from worker.cli.progress_bar import ByteBars

                self._bars = ByteBars(self._stream)
            self._bars.start(phase, total_bytes)

    def phase_advanced(self, phase: str, count: int) -> None:
        """Move the phase's bar on."""
        if self._bars is None:
            return
        with self._lock:
            if self._bars is not None:
                self._bars.advance(phase, count)

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Nothing to draw: the stage bar counts them."""

    def bytes_written(self, store: str, count: int) -> None:
        """Nothing to draw: the store's bar counts them."""

    def bytes_skipped(self, store: str, count: int) -> None:
        """Nothing to draw: the store's bar counts them."""

    def store_write(self, store: str, result: str) -> None:
        """Nothing to draw: the step line says it."""

    def safety_refusal(self, check: str) -> None:
        """Nothing to draw: the failure says it."""

    def lock_taken_over(self) -> None:
        """Nothing to draw."""
