"""What the flow tells its observer about the bytes it moves: each phase's total, reached."""

from __future__ import annotations

import threading
from pathlib import Path

from flows.observer import NullObserver
from tests.support.images import MiB, make_sample_qcow2
from tests.support.settings import make_settings
from worker.tasks.embedded import import_image
from worker.tasks.services import Services


class PhaseRecorder(NullObserver):
    """Records each phase's announced total and the bytes reported done."""

    def __init__(self) -> None:
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = {}
        self._lock = threading.Lock()

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        with self._lock:
            self.totals[phase] = total_bytes
            self.done[phase] = 0

    def phase_advanced(self, phase: str, count: int) -> None:
        with self._lock:
            self.done[phase] += count


async def test_every_phase_announces_its_total_and_reaches_it(tmp_path: Path) -> None:
    qcow2 = make_sample_qcow2(tmp_path / "disk.qcow2", 96 * MiB, 32 * MiB)
    settings = make_settings(tmp_path, stores=("central", "dcn0"))
    recorder = PhaseRecorder()
    services = await Services.open(settings, recorder)
    try:
        result = await import_image(
            services, file=qcow2, disk_format="qcow2", stores=["central", "dcn0"]
        )
    finally:
        await services.close()
    assert result.outcome.status == "success"
    virtual = 96 * MiB
    assert recorder.totals == {
        "stage": qcow2.stat().st_size,
        "convert": virtual,
        "checksums": virtual,
        "store:central": virtual,
        "store:dcn0": virtual,
    }
    assert recorder.done == recorder.totals
