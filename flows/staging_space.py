"""The staging area's free-space reserve, checked before a download and before a conversion."""

from __future__ import annotations

import shutil

from flows.config import FlowSettings
from flows.errors import StagingError

MiB = 1024 * 1024


def check_staging_space(settings: FlowSettings, needed: int = 0, before: str = "download") -> None:
    """Raise :class:`StagingError` unless ``needed`` bytes fit above the configured reserve."""
    directory = settings.staging_dir
    free = shutil.disk_usage(directory).free
    reserve = settings.safety.staging_min_free_bytes
    if free - needed < reserve:
        wanted = f" and {needed // MiB} MiB for the {before}" if needed else ""
        raise StagingError(
            f"staging area {directory} has {free // MiB} MiB free; the {before} needs the "
            f"{reserve // MiB} MiB reserve{wanted}: free space or move [staging] dir"
        )
