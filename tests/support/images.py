"""Test images generated on the fly: sparse raw files with known data, and qemu-img outputs."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

from flows.sparse import ImageReader

MiB = 1024 * 1024


def make_sparse_raw(path: Path, size: int, extents: list[tuple[int, int]], seed: int = 1) -> int:
    """Write random data at each ``(offset, length)`` of a sparse file; return the data bytes."""
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, length in extents:
            handle.seek(offset)
            remaining = length
            while remaining:
                piece = min(remaining, 4 * MiB)
                handle.write(rng.randbytes(piece))
                remaining -= piece
    return sum(length for _, length in extents)


def default_extents(size: int) -> list[tuple[int, int]]:
    """A few scattered data extents, zeros and holes between them."""
    return [(0, MiB), (5 * MiB + 4096, 3 * MiB), (size // 2, 2 * MiB), (size - MiB, MiB)]


def qemu_img(*args: str) -> str:
    """Run qemu-img; fail the test with its stderr if it fails."""
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"qemu-img {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def convert(
    source: Path, target: Path, source_format: str, target_format: str, *options: str
) -> Path:
    """``qemu-img convert -f SRC -O DST [options]``."""
    qemu_img(
        "convert", "-f", source_format, "-O", target_format, *options, str(source), str(target)
    )
    return target


def sha512_of(path: Path) -> str:
    """sha512 of a whole file, zeros included."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def md5_of(path: Path) -> str:
    """md5 of a whole file."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def reader_sha256(reader: ImageReader, chunk: int) -> str:
    """SHA-256 of everything ``reader`` yields (holes as zeros), checking its segments are
    contiguous and cover exactly its size."""
    sha = hashlib.sha256()
    position = 0
    for segment in reader.segments(chunk):
        assert segment.offset == position
        sha.update(segment.data if segment.data is not None else bytes(segment.length))
        position += segment.length
    assert position == reader.size
    return sha.hexdigest()


def allocated_bytes(path: Path) -> int:
    """Bytes the filesystem really allocated for ``path``."""
    return os.stat(path).st_blocks * 512


def scattered_extents(
    size: int, data_bytes: int, *, seed: int = 7, smallest: int = MiB, largest: int = 64 * MiB
) -> list[tuple[int, int]]:
    """Non-overlapping extents of ``smallest``..``largest`` bytes adding up to ``data_bytes``."""
    rng = random.Random(seed)
    lengths: list[int] = []
    while sum(lengths) < data_bytes:
        lengths.append(min(rng.randrange(smallest, largest + 1, MiB), data_bytes - sum(lengths)))
    gap_total = size - data_bytes
    cuts = sorted(rng.randrange(0, gap_total // MiB + 1) * MiB for _ in lengths)
    extents, position, previous_cut = [], 0, 0
    for cut, length in zip(cuts, lengths, strict=True):
        position += cut - previous_cut
        previous_cut = cut
        extents.append((position, length))
        position += length
    return extents


def make_sample_qcow2(path: Path, virtual_size: int, data_bytes: int) -> Path:
    """A qcow2 of ``virtual_size`` with ``data_bytes`` of random data in scattered extents."""
    raw = path.with_suffix(".raw.tmp")
    make_sparse_raw(raw, virtual_size, scattered_extents(virtual_size, data_bytes))
    try:
        convert(raw, path, "raw", "qcow2")
    finally:
        raw.unlink(missing_ok=True)
    return path


def make_served_qcow2(root: Path) -> Path:
    """A directory ``root/served`` holding ``disk.qcow2`` (48 MiB virtual, 3 MiB of data)."""
    directory = root / "served"
    directory.mkdir()
    raw = root / "disk.raw"
    make_sparse_raw(raw, 48 * MiB, [(0, MiB), (20 * MiB, 2 * MiB)])
    convert(raw, directory / "disk.qcow2", "raw", "qcow2")
    return directory


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a sample qcow2 image with scattered data.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--virtual-mib", type=int, default=1024)
    parser.add_argument("--data-mib", type=int, default=96)
    arguments = parser.parse_args()
    make_sample_qcow2(arguments.output, arguments.virtual_mib * MiB, arguments.data_mib * MiB)
    print(arguments.output)
