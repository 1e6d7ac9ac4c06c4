"""The directory store: sparse, atomic, no partial data left behind."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.errors import StoreFailed
from flows.sparse import Segment, SparseFileReader
from flows.stores.file import FileStore, FileStoreConfig
from tests.support.images import MiB, allocated_bytes, make_sparse_raw


def store_at(path: Path) -> FileStore:
    return FileStore("central", FileStoreConfig(type="file", path=str(path), chunk_size=MiB))


async def test_add_writes_identical_sparse_data(tmp_path: Path) -> None:
    source = tmp_path / "src.raw"
    data = make_sparse_raw(source, 256 * MiB, [(0, MiB), (100 * MiB, 3 * MiB)])
    store = store_at(tmp_path / "store")
    counted: list[tuple[int, int]] = []
    stored = await store.add("img", SparseFileReader(source), lambda w, s: counted.append((w, s)))
    target = tmp_path / "store" / "img"
    assert stored.url == target.as_uri()
    assert target.read_bytes() == source.read_bytes()
    assert stored.bytes_written == data and stored.bytes_skipped == 256 * MiB - data
    assert sum(w + s for w, s in counted) == 256 * MiB
    assert allocated_bytes(target) <= data + MiB
    assert await store.exists(stored.url)
    assert store.owns(stored.url) and not store.owns("file:///elsewhere/img")


async def test_delete_and_open(tmp_path: Path) -> None:
    source = tmp_path / "src.raw"
    make_sparse_raw(source, 8 * MiB, [(MiB, MiB)])
    store = store_at(tmp_path / "store")
    stored = await store.add("img", SparseFileReader(source))
    reader = await store.open(stored.url)
    assert reader.size == 8 * MiB
    await store.delete(stored.url)
    await store.delete(stored.url)  # twice is fine
    assert not await store.exists(stored.url)


async def test_immutable_directory_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "src.raw"
    make_sparse_raw(source, 4 * MiB, [(0, MiB)])
    directory = tmp_path / "store"
    directory.mkdir()
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        with pytest.raises(StoreFailed) as caught:
            await store_at(directory).add("img", SparseFileReader(source))
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
    assert caught.value.store == "central"
    assert "Operation not permitted" in str(caught.value)
    assert list(directory.iterdir()) == []


class FailingReader:
    """Yields some data, then breaks (a source that dies mid-copy)."""

    size = 8 * MiB

    def segments(self, chunk_size: int = MiB) -> Iterator[Segment]:
        yield Segment(0, MiB, b"\x01" * MiB)
        raise OSError(5, "Input/output error")


async def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    with pytest.raises(StoreFailed):
        await store_at(directory).add("img", FailingReader())
    assert list(directory.iterdir()) == []


async def test_cancelled_write_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src.raw"
    make_sparse_raw(source, 512 * MiB, [(i * 8 * MiB, 4 * MiB) for i in range(60)])
    directory = tmp_path / "store"
    task = asyncio.create_task(store_at(directory).add("img", SparseFileReader(source)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(directory.iterdir()) == []


async def test_discard_removes_partials_and_image(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir()
    (directory / "img").write_bytes(b"x")
    (directory / ".img.abc.partial").write_bytes(b"x")
    (directory / "other").write_bytes(b"x")
    await store_at(directory).discard("img")
    assert sorted(p.name for p in directory.iterdir()) == ["other"]


async def test_a_copy_the_kernel_refuses_is_written_by_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across filesystems copy_file_range says EXDEV: the store reads and writes instead."""
    import errno
    import os

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    source = tmp_path / "src.raw"
    data = make_sparse_raw(source, 64 * MiB, [(MiB, 2 * MiB), (40 * MiB, MiB)])
    stored = await store_at(tmp_path / "store").add("img", SparseFileReader(source))
    target = tmp_path / "store" / "img"
    assert target.read_bytes() == source.read_bytes()
    assert stored.bytes_written == data and allocated_bytes(target) <= data + MiB
