"""The task's progress message: the phase, the store, bytes done of total, never summed."""

from __future__ import annotations

from flows.observer import NullObserver, Tee
from flows.progress import Progress
from flows.progress_message import amount, progress_message
from flows.states import StepResult

MiB = 1024 * 1024
GiB = 1024 * MiB


def message(progress: Progress) -> str:
    return progress_message(progress.snapshot())


def test_the_phases_in_turn_each_store_on_its_own() -> None:
    progress = Progress()
    assert message(progress) == "starting"
    progress.phase_started("stage", 4 * GiB)
    progress.phase_advanced("stage", GiB + GiB // 5)
    assert message(progress) == "staging: 1.2 of 4.0 GiB"
    progress.step_finished("stage", 1.0, StepResult.SUCCESS)
    progress.phase = "inspecting"
    assert message(progress) == "inspecting"
    progress.phase_started("convert", 4 * GiB)
    progress.phase_advanced("convert", 2 * GiB)
    assert message(progress) == "converting: 2.0 of 4.0 GiB"
    progress.step_finished("convert", 1.0, StepResult.SUCCESS)
    progress.phase_started("checksums", 4 * GiB)
    progress.phase_started("store:central", 4 * GiB)
    progress.phase_advanced("store:central", 4 * GiB)
    progress.step_finished("store:central", 1.0, StepResult.SUCCESS)
    progress.phase_started("store:dcn0", 4 * GiB)
    progress.phase_advanced("store:dcn0", GiB + GiB // 5)
    # Not 5.2 GiB "copied": each store is counted on its own.
    assert message(progress) == "store dcn0: 1.2 of 4.0 GiB (central written)"
    progress.phase_advanced("store:dcn0", 3 * GiB - GiB // 5)
    progress.step_finished("store:dcn0", 1.0, StepResult.SUCCESS)
    progress.phase_advanced("checksums", 3 * GiB)
    # The hashing outlasting the writes is named, not a silent wait.
    assert message(progress) == "computing checksums: 3.0 of 4.0 GiB (central, dcn0 written)"


def test_a_failed_store_is_not_said_to_be_written() -> None:
    progress = Progress()
    for store in ("central", "dcn1", "dcn0"):
        progress.phase_started(f"store:{store}", 512 * MiB)
    progress.phase_advanced("store:central", 512 * MiB)
    progress.phase_advanced("store:dcn1", 100 * MiB)
    progress.store_write("dcn1", StepResult.FAILURE)
    progress.step_finished("store:dcn1", 1.0, StepResult.SUCCESS)  # failure allowed
    progress.phase_advanced("store:dcn0", 10 * MiB)
    assert message(progress) == "store dcn0: 10 of 512 MiB (central written; dcn1 failed)"


def test_stores_written_at_once_are_listed_together() -> None:
    progress = Progress()
    for store in ("dcn0", "dcn1"):
        progress.phase_started(f"store:{store}", 512 * MiB)
    progress.phase_advanced("store:dcn0", 300 * MiB)
    progress.phase_advanced("store:dcn1", 100 * MiB)
    assert message(progress) == "store dcn0: 300 of 512 MiB; store dcn1: 100 of 512 MiB"


def test_a_download_without_a_length_shows_what_came() -> None:
    assert amount(3 * MiB, None) == "3 MiB"
    assert amount(3 * GiB, None) == "3.0 GiB"
    assert amount(0, 0) == "0 of 0 MiB"


def test_a_retried_phase_starts_again_from_zero() -> None:
    progress = Progress()
    progress.phase_started("store:dcn0", 100 * MiB)
    progress.phase_advanced("store:dcn0", 80 * MiB)
    progress.phase_started("store:dcn0", 100 * MiB)
    assert message(progress) == "store dcn0: 0 of 100 MiB"


def test_the_tee_reports_to_every_observer() -> None:
    progress = Progress()
    tee = Tee(NullObserver(), progress)
    tee.phase_started("stage", 10 * MiB)
    tee.phase_advanced("stage", 5 * MiB)
    tee.bytes_downloaded("web-download", 5 * MiB)
    assert message(progress) == "staging: 5 of 10 MiB"
