"""The cache's entry file: a trailer that vouches for every block, and finds every rot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.cache.entry_file import (
    BLOCK_SIZE,
    FOOTER_SIZE,
    BlockDigester,
    EntryFacts,
    block_count,
    block_digest,
    footprint,
    read_block,
    read_trailer,
)
from worker.cache.errors import CorruptBlock, InvalidEntry

SIZE = 2 * BLOCK_SIZE + 12345


def _entry(path: Path) -> tuple[bytes, EntryFacts]:
    data = os.urandom(SIZE)
    digester = BlockDigester()
    for start in range(0, SIZE, 1_000_003):  # pieces that straddle the blocks
        digester.update(data[start : start + 1_000_003])
    digests = digester.take() + digester.finish()
    facts = EntryFacts(SIZE, "sha512", "ab" * 64, b"".join(digests))
    path.write_bytes(data + facts.trailer())
    return data, facts


def test_the_trailer_reads_back_and_vouches_for_each_block(tmp_path: Path) -> None:
    data, facts = _entry(tmp_path / "entry")
    assert (tmp_path / "entry").stat().st_size == footprint(SIZE)
    fd = os.open(tmp_path / "entry", os.O_RDONLY)
    try:
        assert read_trailer(fd) == facts
        for index in range(block_count(SIZE)):
            block = data[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE]
            assert facts.digest(index) == block_digest(block)
            assert read_block(fd, index, SIZE, facts.digest(index)) == block
    finally:
        os.close(fd)


def test_a_flipped_byte_in_the_data_is_found_in_its_block(tmp_path: Path) -> None:
    _data, facts = _entry(tmp_path / "entry")
    with (tmp_path / "entry").open("r+b") as handle:
        handle.seek(BLOCK_SIZE + 5)
        handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")
    fd = os.open(tmp_path / "entry", os.O_RDONLY)
    try:
        read_block(fd, 0, SIZE, facts.digest(0))
        with pytest.raises(CorruptBlock, match="cached block 1"):
            read_block(fd, 1, SIZE, facts.digest(1))
        read_block(fd, 1, SIZE, None)  # unchecked reads do not look
    finally:
        os.close(fd)


@pytest.mark.parametrize("where", [SIZE + 3, -FOOTER_SIZE + 2, -30, -1])
def test_any_damage_to_the_trailer_makes_the_file_no_entry(tmp_path: Path, where: int) -> None:
    _entry(tmp_path / "entry")
    with (tmp_path / "entry").open("r+b") as handle:
        handle.seek(where, os.SEEK_SET if where >= 0 else os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x55]))
    fd = os.open(tmp_path / "entry", os.O_RDONLY)
    try:
        with pytest.raises(InvalidEntry):
            read_trailer(fd)
    finally:
        os.close(fd)


def test_a_partial_file_or_a_stranger_is_no_entry(tmp_path: Path) -> None:
    _data, _facts = _entry(tmp_path / "entry")
    with (tmp_path / "entry").open("r+b") as handle:
        handle.truncate(SIZE)  # a fill's data without its trailer
    (tmp_path / "tiny").write_bytes(b"hello")
    for name in ("entry", "tiny"):
        fd = os.open(tmp_path / name, os.O_RDONLY)
        try:
            with pytest.raises(InvalidEntry):
                read_trailer(fd)
        finally:
            os.close(fd)
