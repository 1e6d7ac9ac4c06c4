"""Starting writeback early: found here (imgworker runs on Linux only), accepted by the kernel,
harmless when refused."""

from __future__ import annotations

import os
from pathlib import Path

from flows.writeback import _sync_file_range, start_writeback


def test_the_kernel_accepts_the_call_on_a_written_file(tmp_path: Path) -> None:
    call = _sync_file_range()
    assert call is not None, "sync_file_range not found: store writes lose their overlap"
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        os.pwrite(fd, b"x" * (1 << 20), 0)
        assert call(fd, 0, 1 << 20, 2) == 0
        start_writeback(fd, 0, 1 << 20)
    finally:
        os.close(fd)


def test_a_refused_call_raises_nothing(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    start_writeback(fd, 0, 4096)  # a closed descriptor: EBADF, ignored (best effort)
