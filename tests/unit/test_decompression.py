"""image_decompression: gzip/xz/zip detected by magic, sparse output, bombs stopped at the cap."""

from __future__ import annotations

import gzip
import lzma
import zipfile
from pathlib import Path

import pytest

from flows.decompression import decompress, detect_compression
from flows.errors import SafetyRefusal

MiB = 1024 * 1024


def _payload() -> bytes:
    return b"\x01" * MiB + bytes(8 * MiB) + b"\x02" * MiB


def _compress(kind: str, data: bytes, path: Path) -> None:
    if kind == "gzip":
        path.write_bytes(gzip.compress(data))
    elif kind == "xz":
        path.write_bytes(lzma.compress(data))
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("disk.raw", data)


@pytest.mark.parametrize("kind", ["gzip", "xz", "zip"])
def test_round_trip_keeps_zero_runs_as_holes(kind: str, tmp_path: Path) -> None:
    source, dest = tmp_path / "in", tmp_path / "out"
    _compress(kind, _payload(), source)
    assert detect_compression(source) == kind
    assert decompress(source, dest, kind, cap=64 * MiB) == len(_payload())
    assert dest.read_bytes() == _payload()
    assert dest.stat().st_blocks * 512 <= 3 * MiB


def test_plain_bits_are_not_compressed(tmp_path: Path) -> None:
    path = tmp_path / "raw"
    path.write_bytes(b"QFI\xfb" + bytes(100))
    assert detect_compression(path) is None


@pytest.mark.parametrize("kind", ["gzip", "xz", "zip"])
def test_bomb_stops_at_the_cap_and_leaves_nothing(kind: str, tmp_path: Path) -> None:
    source, dest = tmp_path / "bomb", tmp_path / "out"
    _compress(kind, bytes(64 * MiB), source)
    assert source.stat().st_size < MiB
    with pytest.raises(SafetyRefusal, match="exceeds the image size cap") as refused:
        decompress(source, dest, kind, cap=16 * MiB)
    assert refused.value.check == "decompression"
    assert not dest.exists()


def test_zip_with_several_files_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "two.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("a.raw", b"a")
        archive.writestr("b.raw", b"b")
    with pytest.raises(SafetyRefusal, match="holds 2 files"):
        decompress(source, tmp_path / "out", "zip", cap=MiB)


def test_corrupt_gzip_is_refused_with_the_reason(tmp_path: Path) -> None:
    source = tmp_path / "bad.gz"
    source.write_bytes(gzip.compress(b"x" * 10000)[:40])
    with pytest.raises(SafetyRefusal, match="gzip data could not be decompressed"):
        decompress(source, tmp_path / "out", "gzip", cap=MiB)
    assert not (tmp_path / "out").exists()
