"""The cache directory's accounting: a hard limit, LRU eviction, and never an entry in use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.cache.directory import CacheDirectory, Entry
from worker.cache.entry_file import EntryFacts, block_count, footprint
from worker.cache.errors import CacheDirectoryUnusable

MiB = 1024 * 1024
SIZE = 5 * MiB


def _facts(size: int = SIZE) -> EntryFacts:
    return EntryFacts(size, "sha512", "ab" * 64, b"\0" * 16 * block_count(size))


def _fill(directory: CacheDirectory, image_id: str, at: float) -> Entry:
    reservation = directory.reserve(image_id, SIZE)
    assert reservation is not None
    entry = Entry(image_id, _facts(), directory.entry_path(image_id), at, at)
    directory.admit(reservation, entry)
    return entry


def test_room_is_made_least_recently_used_first(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path, 2 * footprint(SIZE))
    _fill(directory, "old", 1.0)
    _fill(directory, "new", 2.0)
    reservation = directory.reserve("third", SIZE)
    assert reservation is not None and [e.image_id for e in reservation.evicted] == ["old"]
    assert directory.get("old") is None and directory.used == 2 * footprint(SIZE)


def test_an_entry_being_read_is_never_evicted(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path, 2 * footprint(SIZE))
    old, new = _fill(directory, "old", 1.0), _fill(directory, "new", 2.0)
    directory.open_entry(old)
    directory.open_entry(new)
    assert directory.reserve("third", SIZE) is None  # served uncached: no room
    directory.close_entry(new)
    reservation = directory.reserve("third", SIZE)
    assert reservation is not None and [e.image_id for e in reservation.evicted] == ["new"]
    assert old.hits == 1


def test_a_removed_entry_still_read_keeps_its_bytes_counted(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path, 2 * footprint(SIZE))
    entry = _fill(directory, "gone", 1.0)
    directory.open_entry(entry)
    assert directory.remove("gone") is entry and directory.get("gone") is None
    assert directory.used == footprint(SIZE)  # the disk still holds its blocks
    directory.close_entry(entry)
    assert directory.used == 0


def test_too_large_an_image_gets_no_room_and_a_failed_fill_gives_it_back(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path, footprint(SIZE))
    assert directory.reserve("huge", SIZE + 1) is None
    reservation = directory.reserve("fits", SIZE)
    assert reservation is not None and directory.used == footprint(SIZE)
    directory.release(reservation)
    assert directory.used == 0


def test_a_lowered_limit_is_met_by_pruning_unread_entries(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path, 3 * footprint(SIZE))
    entries = [_fill(directory, name, at) for at, name in enumerate(("a", "b", "c"))]
    directory.open_entry(entries[0])
    directory.max_size = footprint(SIZE)
    assert [e.image_id for e in directory.over_limit()] == ["b", "c"]
    assert directory.used == footprint(SIZE)


def test_recovery_removes_partial_fills_and_files_that_are_no_entries(tmp_path: Path) -> None:
    directory = CacheDirectory(tmp_path / "cache", 10 * footprint(SIZE))
    directory.lock()
    facts = _facts()
    (directory.incomplete / "dead-fill").write_bytes(b"x" * 100)
    (directory.images / "good").write_bytes(bytes(SIZE) + facts.trailer())
    (directory.images / "torn").write_bytes(bytes(SIZE))
    recovery = directory.recover()
    assert sorted(recovery.removed) == ["dead-fill", "torn"]
    assert [entry.image_id for entry in recovery.entries] == ["good"]
    assert sorted(os.listdir(directory.images)) == ["good"]
    assert directory.used == footprint(SIZE)
    directory.unlock()


def test_a_directory_serves_one_process(tmp_path: Path) -> None:
    first, second = CacheDirectory(tmp_path, MiB), CacheDirectory(tmp_path, MiB)
    first.lock()
    with pytest.raises(CacheDirectoryUnusable, match="in use by another process"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()
