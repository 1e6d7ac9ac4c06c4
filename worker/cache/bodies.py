"""What a download sends: the bytes of an image, or of a range of it, from where they are.

- :class:`StoreBody`: straight from a store (no cache, or an image the cache cannot take);
- :class:`EntryBody`: from an entry of this node's cache;
- :class:`FillBody`: from a fill under way, following it as it grows.

The two cached kinds read block by block, each block checked against the digest recorded
when it was filled before a byte of it is sent (unless ``[cache] verify_reads`` is off).
A block that no longer matches stops the download: it is never completed with bad bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol

from flows.errors import NotFound
from flows.records import ImageRecord, Location
from flows.sparse import ImageReader, zero_pieces
from flows.states import ImageStatus, LocationStatus
from flows.stores.base import Store
from worker.cache.directory import CacheDirectory, Entry
from worker.cache.entry_file import BLOCK_SIZE, read_block
from worker.cache.errors import CorruptBlock
from worker.cache.fill import Fill
from worker.cache.metrics import ServedFrom

#: Bytes handed to the socket per write for zero runs of a store read.
ZERO_PIECE = 1024 * 1024

Chunk = bytes | memoryview


class ImageBody(Protocol):
    """The bytes of one image for one download."""

    @property
    def size(self) -> int:
        """The image's size."""
        ...

    @property
    def source(self) -> ServedFrom:
        """Where the bytes come from."""
        ...

    def chunks(self, start: int, end: int) -> AsyncGenerator[Chunk, None]:
        """Bytes ``[start, end)``, in order."""
        ...

    async def close(self) -> None:
        """Release what the download held (twice is fine)."""
        ...


def readable_location(image: ImageRecord, stores: dict[str, Store]) -> Location | None:
    """The first active location of ``image`` in one of ``stores``; None when it has no data.

    :class:`NotFound` when it has data, but in no store this process can read. A deactivated
    image has its data too (admins still download it).
    """
    if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return None
    for location in image.locations:
        if location.status == LocationStatus.ACTIVE and location.store in stores:
            return location
    if image.locations:
        raise NotFound(f"Image {image.id}'s data is in no store this API can read.")
    return None


class StoreBody:
    """An image read from its store by this download alone."""

    source = ServedFrom.STORE

    def __init__(self, reader: ImageReader) -> None:
        self._reader = reader

    @property
    def size(self) -> int:
        """The image's size."""
        return self._reader.size

    async def chunks(self, start: int, end: int) -> AsyncGenerator[Chunk, None]:
        """The store's segments, cut to the range; zero runs as shared zero pieces."""
        segments = self._reader.segments()
        try:
            while (segment := await asyncio.to_thread(next, segments, None)) is not None:
                segment_end = segment.offset + segment.length
                if segment_end <= start:
                    continue
                if segment.offset >= end:
                    break
                low = max(start, segment.offset) - segment.offset
                high = min(end, segment_end) - segment.offset
                if segment.data is not None:
                    yield memoryview(segment.data)[low:high]
                else:
                    for piece in zero_pieces(high - low, ZERO_PIECE):
                        yield piece
        finally:
            # A store's generator may hold an image open, closed by a blocking call.
            close = getattr(segments, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    async def close(self) -> None:
        """Release the reader."""
        self._reader.close()


class EntryBody:
    """An image read from an entry of this node's cache."""

    source = ServedFrom.CACHE

    def __init__(
        self,
        directory: CacheDirectory,
        entry: Entry,
        fd: int,
        verify: bool,
        on_corrupt: Callable[[CorruptBlock], Awaitable[None]],
    ) -> None:
        self._directory = directory
        self._entry = entry
        self._fd: int | None = fd
        self._verify = verify
        self._on_corrupt = on_corrupt

    @property
    def size(self) -> int:
        """The image's size."""
        return self._entry.facts.size

    async def chunks(self, start: int, end: int) -> AsyncGenerator[Chunk, None]:
        """The entry's blocks, each checked, cut to the range."""
        try:
            async for chunk in blocks_of(self._read, self.size, start, end):
                yield chunk
        except CorruptBlock as corrupt:
            await self._on_corrupt(corrupt)
            raise

    async def _read(self, index: int) -> bytes:
        assert self._fd is not None, "the body was closed"
        expected = self._entry.facts.digest(index) if self._verify else None
        return await asyncio.to_thread(read_block, self._fd, index, self.size, expected)

    async def close(self) -> None:
        """Close the file and let the entry be evicted again."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            self._directory.close_entry(self._entry)


class FillBody:
    """An image read from a fill under way on this node, as it grows."""

    source = ServedFrom.FILL

    def __init__(self, fill: Fill, verify: bool, leave: Callable[[Fill], None]) -> None:
        self._fill = fill
        self._verify = verify
        self._leave: Callable[[Fill], None] | None = leave
        fill.users += 1

    @property
    def size(self) -> int:
        """The image's size."""
        return self._fill.expected.size

    async def chunks(self, start: int, end: int) -> AsyncGenerator[Chunk, None]:
        """Each block once the fill wrote it (the last once all was verified), checked."""
        fill = self._fill

        async def read(index: int) -> bytes:
            await fill.ready(min((index + 1) * BLOCK_SIZE, self.size))
            return await fill.block(index, self._verify)

        try:
            async for chunk in blocks_of(read, self.size, start, end):
                yield chunk
        except CorruptBlock:
            # The disk did not keep what the fill wrote: its entry would not be any better.
            fill.unwanted = True
            raise

    async def close(self) -> None:
        """Stop following the fill (the last download to leave an unfinished fill ends it)."""
        leave, self._leave = self._leave, None
        if leave is not None:
            leave(self._fill)


async def blocks_of(
    read: Callable[[int], Awaitable[bytes]], size: int, start: int, end: int
) -> AsyncGenerator[memoryview, None]:
    """Bytes ``[start, end)`` of an image of ``size`` bytes, from ``read(block index)``."""
    if start >= end:
        return
    for index in range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1):
        block_start = index * BLOCK_SIZE
        data = await read(index)
        yield memoryview(data)[max(start - block_start, 0) : min(end - block_start, len(data))]
