"""Progress on a terminal for the embedded commands: one line per step, a live byte count."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

MiB = 1024 * 1024


class TerminalProgress:
    """A :class:`flows.observer.FlowObserver` that draws progress on a terminal.

    Step results are printed as they end; while bytes move, one status line is redrawn in
    place. On a non-terminal stream only the step lines are written.
    """

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._label = ""
        self._drawn = 0.0

    def step_finished(self, step: str, seconds: float, result: str) -> None:
        """Print the step and how it ended."""
        with self._lock:
            self._clear()
            mark = {"success": "ok", "failure": "FAILED"}.get(result, result)
            self._stream.write(f"  {step:<24} {mark:<14} {seconds:7.1f} s\n")
            self._stream.flush()

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Nothing to draw yet: the byte hooks below count."""

    def phase_advanced(self, phase: str, count: int) -> None:
        """Nothing to draw yet: the byte hooks below count."""

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Count staged bytes."""
        self._add("staging", count)

    def bytes_written(self, store: str, count: int) -> None:
        """Count bytes written to a store."""
        self._add(f"writing {store}", count)

    def bytes_skipped(self, store: str, count: int) -> None:
        """Zeros skipped still count as progress through the image."""
        self._add(f"writing {store}", count)

    def store_write(self, store: str, result: str) -> None:
        """Nothing to draw: the step line says it."""

    def safety_refusal(self, check: str) -> None:
        """Nothing to draw: the failure says it."""

    def lock_taken_over(self) -> None:
        """Nothing to draw."""

    def _add(self, label: str, count: int) -> None:
        with self._lock:
            self._counts[label] = self._counts.get(label, 0) + count
            self._label = label
            now = time.monotonic()
            if self._live and now - self._drawn > 0.2:
                self._drawn = now
                done = self._counts[label] // MiB
                self._stream.write(f"\r  {label}: {done} MiB ")
                self._stream.flush()

    def _clear(self) -> None:
        if self._live and self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = 0.0
