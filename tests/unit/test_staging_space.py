"""The staging reserve: a clear error naming the directory, the free space and the need."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.config import FlowSettings
from flows.errors import StagingError
from flows.policy import SafetyPolicy
from flows.staging_space import check_staging_space


def test_reserve_above_free_space_is_refused(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    settings = FlowSettings(
        staging_dir=tmp_path, safety=SafetyPolicy(staging_min_free_bytes=free + 2**30)
    )
    with pytest.raises(StagingError, match=f"staging area {tmp_path} has .* MiB free"):
        check_staging_space(settings)


def test_conversion_needs_room_for_its_output(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    settings = FlowSettings(staging_dir=tmp_path, safety=SafetyPolicy(staging_min_free_bytes=0))
    check_staging_space(settings, needed=1024)
    with pytest.raises(StagingError, match="MiB for the conversion"):
        check_staging_space(settings, needed=free + 2**30, before="conversion")
