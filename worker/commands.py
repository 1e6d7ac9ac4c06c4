"""The ``imgworker`` entry point: the embedded commands plus the daemon's and the API side's."""

from __future__ import annotations

from worker.cli import main
from worker.cli_daemon import register

register(main)

__all__ = ["main"]
