"""Bytes moved so far, counted from any thread, reported as Glance's "Copied N MiB"."""

from __future__ import annotations

import threading

MiB = 1024 * 1024


class Progress:
    """Thread-safe byte counters for one import."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.downloaded = 0
        self.copied = 0
        self.phase = "starting"
        #: qemu-img convert's progress in percent, while it runs.
        self.converting: float | None = None

    def add_downloaded(self, count: int) -> None:
        """Count bytes brought into staging."""
        with self._lock:
            self.downloaded += count

    def add_copied(self, count: int) -> None:
        """Count bytes handled by store writes (zeros skipped included)."""
        with self._lock:
            self.copied += count

    def message(self) -> str:
        """The task message for the current state."""
        if self.copied:
            return f"Copied {self.copied // MiB} MiB"
        if self.converting is not None:
            return f"Converting: {self.converting:.0f}%"
        if self.downloaded:
            return f"Downloaded {self.downloaded // MiB} MiB"
        return self.phase.capitalize()
