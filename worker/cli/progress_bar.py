"""Byte progress bars on a terminal, drawn by rich: done of total, percent, rate, time left.

Only :class:`worker.cli.terminal.TerminalProgress` imports this module, and only when it is
about to draw a bar: rich takes longer to import than a quick command may spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]


class BinaryRateColumn(ProgressColumn):
    """The transfer rate in the bars' own units (rich's speed column counts in MB/s)."""

    def render(self, task: Task) -> Text:
        """``12.3 MiB/s``, or ``?`` before there are two samples."""
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("? B/s", style="progress.data.speed")
        unit, suffix = filesize.pick_unit_and_suffix(int(speed), BINARY_UNITS, 1024)
        return Text(f"{speed / unit:.1f} {suffix}/s", style="progress.data.speed")


@dataclass
class _Bar:
    task: TaskID
    total: int | None
    done: int = 0


class ByteBars:
    """One bar per phase that is moving bytes, redrawn in place below the printed lines.

    Not thread-safe by itself: the caller serialises calls (rich's own refresh thread
    only reads the tasks, under rich's lock).
    """

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            BinaryRateColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(file=stream, highlight=False),
            transient=True,
            expand=True,
        )
        self._bars: dict[str, _Bar] = {}

    def start(self, phase: str, total: int | None) -> None:
        """Show a bar for ``phase`` from zero (replacing one of the same name)."""
        if not self._bars:
            self._progress.start()
        previous = self._bars.pop(phase, None)
        if previous is not None:
            self._progress.remove_task(previous.task)
        self._bars[phase] = _Bar(self._progress.add_task(phase, total=total), total)

    def advance(self, phase: str, count: int) -> None:
        """Move ``phase``'s bar on by ``count`` bytes; a bar that is full goes away."""
        bar = self._bars.get(phase)
        if bar is None:
            return
        self._progress.advance(bar.task, count)
        bar.done += count
        if bar.total is not None and bar.done >= bar.total:
            self.finish(phase)

    def finish(self, phase: str) -> None:
        """Draw ``phase``'s bar as it ended, then take it away (nothing if it has none)."""
        bar = self._bars.pop(phase, None)
        if bar is None:
            return
        self._progress.refresh()
        self._progress.remove_task(bar.task)
        if not self._bars:
            self.close()

    def print(self, line: str) -> None:
        """Write ``line`` above the bars, exactly as given."""
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Stop drawing; the bars' lines are cleared."""
        self._progress.stop()
