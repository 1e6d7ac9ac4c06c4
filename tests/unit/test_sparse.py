"""Sparse reading and writing: holes are never read, zero runs never written."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from flows.sparse import SparseFileReader, is_all_zero, write_sparse, zero_pieces
from tests.support.images import MiB, allocated_bytes, make_sparse_raw


def test_segments_cover_the_file_in_order_and_mark_holes(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    make_sparse_raw(path, 64 * MiB, [(MiB, 2 * MiB), (40 * MiB, MiB)])
    segments = list(SparseFileReader(path).segments(MiB))
    assert segments[0].offset == 0 and segments[-1].offset + segments[-1].length == 64 * MiB
    for before, after in itertools.pairwise(segments):
        assert before.offset + before.length == after.offset
    data = sum(s.length for s in segments if s.data is not None)
    assert data == 3 * MiB
    rebuilt = bytearray(64 * MiB)
    for segment in segments:
        if segment.data is not None:
            rebuilt[segment.offset : segment.offset + segment.length] = segment.data
    assert bytes(rebuilt) == path.read_bytes()


def test_written_zero_chunks_are_reported_as_zeros(tmp_path: Path) -> None:
    path = tmp_path / "zeros.raw"
    path.write_bytes(bytes(4 * MiB) + b"\x01" + bytes(MiB - 1))
    segments = list(SparseFileReader(path).segments(MiB))
    assert [s.data is None for s in segments] == [True, True, True, True, False]


def test_write_sparse_keeps_holes(tmp_path: Path) -> None:
    source = tmp_path / "src.raw"
    make_sparse_raw(source, 128 * MiB, [(0, MiB), (100 * MiB, 2 * MiB)])
    target = tmp_path / "dst.raw"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        written, skipped = write_sparse(SparseFileReader(source), fd, MiB)
    finally:
        os.close(fd)
    assert written == 3 * MiB and written + skipped == 128 * MiB
    assert target.read_bytes() == source.read_bytes()
    assert allocated_bytes(target) <= 3 * MiB + MiB


def test_zero_helpers() -> None:
    assert is_all_zero(bytes(10)) and not is_all_zero(b"\x00\x01")
    assert is_all_zero(bytes(20 * MiB))
    assert sum(len(piece) for piece in zero_pieces(19 * MiB + 3)) == 19 * MiB + 3
