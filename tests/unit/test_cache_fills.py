"""One fill per image however many downloads miss at once, verified before it is an entry."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from flows.sparse import Segment
from worker.cache.bodies import FillBody
from worker.cache.directory import CacheDirectory
from worker.cache.entry_file import BLOCK_SIZE
from worker.cache.errors import FillFailed, FillReason
from worker.cache.fill import Expected
from worker.cache.fills import Fills
from worker.cache.metrics import CacheMetrics
from worker.cache.removal import Removal

MiB = 1024 * 1024
DATA = os.urandom(3 * BLOCK_SIZE + 4321)


class Reader:
    """A store's reader over bytes, 1 MiB at a time; ``gate`` holds each chunk back."""

    def __init__(self, data: bytes, gate: threading.Semaphore | None = None) -> None:
        self.data, self.gate = data, gate

    @property
    def size(self) -> int:
        return len(self.data)

    def segments(self, chunk_size: int = MiB) -> Iterator[Segment]:
        for offset in range(0, len(self.data), MiB):
            if self.gate is not None:
                self.gate.acquire()
            yield Segment(
                offset, min(MiB, len(self.data) - offset), self.data[offset : offset + MiB]
            )

    def close(self) -> None:
        pass


class Rows:
    """What the records are told (a small fake: the fills only write)."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    async def cached(self, node: str, held: Any) -> None:
        self.recorded.append(held.image_id)

    async def forget(self, *args: Any) -> list[str]:
        return []


class Node:
    def __init__(self, root: Path) -> None:
        self.directory = CacheDirectory(root, 64 * MiB)
        self.directory.lock()
        self.metrics = CacheMetrics(CollectorRegistry())
        self.rows = Rows()
        records: Any = self.rows
        removal = Removal(self.directory, records, "n", self.metrics)
        self.fills = Fills(self.directory, removal, records, "n", self.metrics, stall_seconds=60)
        self.opens = 0

    def follow(self, expected: Expected, reader: Reader) -> FillBody:
        async def open_store() -> Reader:
            self.opens += 1
            return reader

        fill = self.fills.get("img") or self.fills.start("img", expected, open_store)
        assert fill is not None
        return FillBody(fill, True, self.fills.leave)


def _expected(data: bytes, **changes: Any) -> Expected:
    facts = {
        "size": len(data),
        "hash_algo": "sha512",
        "hash_value": hashlib.sha512(data).hexdigest(),
        "checksum": hashlib.md5(data).hexdigest(),
        **changes,
    }
    return Expected(**facts)


async def _read(body: FillBody) -> bytes:
    try:
        return b"".join([bytes(chunk) async for chunk in body.chunks(0, body.size)])
    finally:
        await body.close()


async def test_concurrent_misses_make_one_store_read(tmp_path: Path) -> None:
    node = Node(tmp_path)
    gate = threading.Semaphore(0)
    reader = Reader(DATA, gate)
    bodies = [node.follow(_expected(DATA), reader) for _ in range(8)]
    reads = [asyncio.ensure_future(_read(body)) for body in bodies]
    for _ in range(len(DATA) // MiB + 1):
        gate.release()
        await asyncio.sleep(0.001)
    assert await asyncio.gather(*reads) == [DATA] * 8
    assert node.opens == 1 and node.rows.recorded == ["img"]
    entry = node.directory.get("img")
    assert entry is not None and entry.readers == 0
    assert os.listdir(node.directory.incomplete) == []
    assert os.listdir(node.directory.images) == ["img"]


async def test_bytes_that_do_not_match_never_complete_a_download(tmp_path: Path) -> None:
    node = Node(tmp_path)
    body = node.follow(_expected(DATA, hash_value="00" * 64), Reader(DATA))
    fill = node.fills.get("img")
    assert fill is not None and fill.task is not None
    received = bytearray()
    with pytest.raises(FillFailed) as failed:
        try:
            async for chunk in body.chunks(0, body.size):
                received += chunk
        finally:
            await body.close()
    assert failed.value.why == FillReason.MISMATCH
    assert len(received) == 3 * BLOCK_SIZE  # the last block was held back, never sent
    await fill.task
    assert node.directory.get("img") is None and node.directory.used == 0
    assert os.listdir(node.directory.incomplete) == [] and os.listdir(node.directory.images) == []


async def test_the_last_download_leaving_ends_the_fill(tmp_path: Path) -> None:
    node = Node(tmp_path)
    gate = threading.Semaphore(2)
    body = node.follow(_expected(DATA), Reader(DATA, gate))
    fill = node.fills.get("img")
    assert fill is not None
    await fill.ready(MiB)
    await body.close()
    gate.release(100)  # the store thread must notice the stop, not finish the read
    with pytest.raises(FillFailed) as failed:
        await fill.done
    assert failed.value.why == FillReason.ABANDONED
    assert fill.task is not None
    await fill.task
    assert node.fills.get("img") is None and node.directory.used == 0
    assert os.listdir(node.directory.incomplete) == [] and os.listdir(node.directory.images) == []
