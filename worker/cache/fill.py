"""One fill: a single store read of an image, written into the cache as it is served.

The store's bytes go to a partial file in ``incomplete/``; the image's hash (and
``checksum``) and the per-block digests are computed as they pass. Downloads read the
partial file block by block as it grows, each block checked against its digest; the last
block is held back until every byte has matched the image's ``os_hash_value``, so no
download ever completes with bytes that do not. Only then is the trailer written and the
file renamed into an entry (by :mod:`worker.cache.fills`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from flows.records import ImageRecord
from flows.sparse import DEFAULT_CHUNK_SIZE, ImageReader, zero_pieces
from flows.threads import Stopped, check_stop, run_stoppable
from worker.cache.directory import Entry
from worker.cache.entry_file import BlockDigester, EntryFacts, read_block
from worker.cache.errors import FillFailed, FillReason
from worker.cache.read_ahead import read_ahead

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest wait between two looks at whether a fill stalled.
STALL_CHECK_SECONDS = 5.0
#: Blocks a fill keeps for the downloads that follow it (4 MiB each).
SHARED_BLOCKS = 4


@dataclass(frozen=True, slots=True)
class Expected:
    """What the image record says the bytes are: all a fill is checked against."""

    size: int
    hash_algo: str
    hash_value: str
    checksum: str | None

    @classmethod
    def of(cls, image: ImageRecord) -> Expected | None:
        """The image's facts, or None when a copy of it could not be verified."""
        algo = image.os_hash_algo
        if image.size is None or not image.os_hash_value or not algo:
            return None
        if algo not in hashlib.algorithms_available:
            return None
        return cls(image.size, algo, image.os_hash_value, image.checksum)

    def matches(self, facts: EntryFacts) -> bool:
        """Whether an entry holds these bytes."""
        return (facts.size, facts.hash_algo, facts.hash_value) == (
            self.size,
            self.hash_algo,
            self.hash_value,
        )


class Fill:
    """The store read of one image on this node, and the downloads that follow it."""

    def __init__(self, image_id: str, expected: Expected, partial: Path) -> None:
        self.image_id = image_id
        self.expected = expected
        self.partial = partial
        #: Bytes from the start already in the partial file.
        self.received = 0
        #: Downloads (and a prefetch) that want this fill; none left: it is abandoned.
        self.users = 0
        #: Removed from the cache meanwhile: it ends without becoming an entry.
        self.unwanted = False
        #: Every byte read and verified: only publishing is left (no longer abandoned).
        self.copied = False
        self._digests: list[bytes] = []
        #: The blocks read last, shared by the downloads following the fill.
        self._blocks: OrderedDict[int, asyncio.Future[bytes]] = OrderedDict()
        self._changed = asyncio.Event()
        self._read_fd: int | None = None
        self._last_progress = time.monotonic()
        self.done: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        # A fill nobody waits on at its end must not warn that its error went unread.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.task: asyncio.Task[None] | None = None

    # -- downloads following the fill -----------------------------------------------------

    async def block(self, index: int, verify: bool) -> bytes:
        """Block ``index`` (written: see :meth:`ready`), checked against its digest.

        Read once for every download following the fill: they move together, at the pace
        of the store, and each block is read and checked once, not once per download.
        """
        read = self._blocks.get(index)
        if read is None:
            fd = self._read_fd
            assert fd is not None, "read only what ready() said was written"
            expected = self._digests[index] if verify else None
            read = asyncio.ensure_future(
                asyncio.to_thread(read_block, fd, index, self.expected.size, expected)
            )
            read.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._blocks[index] = read
            while len(self._blocks) > SHARED_BLOCKS:
                self._blocks.popitem(last=False)
        return await asyncio.shield(read)

    async def ready(self, end: int) -> None:
        """Wait until bytes ``[0, end)`` are written (for the last block: and verified).

        Raises the fill's failure when it failed.
        """
        while True:
            if self.done.done():
                self.done.result()
                return
            if end < self.expected.size and self.received >= end:
                return
            changed = self._changed
            await changed.wait()

    # -- the store read -------------------------------------------------------------------

    async def copy(
        self, reader: ImageReader, stall_seconds: float, on_bytes: Callable[[int], None]
    ) -> EntryFacts:
        """Read the whole image from ``reader`` into the partial file; its verified facts.

        Raises :class:`FillFailed` (mismatch, store, disk, stalled). Cancelling it stops the
        read and waits for the thread.
        """
        loop = asyncio.get_running_loop()
        work = asyncio.ensure_future(
            run_stoppable(
                lambda stop: self._copy(reader, stop, loop, on_bytes),
                own_thread=f"cache-fill-{self.image_id[:8]}",
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait({work}, timeout=STALL_CHECK_SECONDS)
                if done:
                    return work.result()
                if time.monotonic() - self._last_progress > stall_seconds:
                    raise FillFailed(
                        FillReason.STALLED,
                        f"the store sent nothing for {stall_seconds:.0f} s while image "
                        f"{self.image_id} was being cached",
                    )
        finally:
            if not work.done():
                work.cancel()
                await asyncio.wait({work})

    def _copy(
        self,
        reader: ImageReader,
        stop: threading.Event,
        loop: asyncio.AbstractEventLoop,
        on_bytes: Callable[[int], None],
    ) -> EntryFacts:
        size = self.expected.size
        if reader.size != size:
            raise FillFailed(
                FillReason.MISMATCH,
                f"the store holds {reader.size} bytes of image {self.image_id}; its record "
                f"says {size}",
            )
        fd = _disk(lambda: os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        try:
            self._read_fd = _disk(lambda: os.open(self.partial, os.O_RDONLY))
            _disk(lambda: os.ftruncate(fd, size))
            facts = self._stream(reader, fd, stop, loop, on_bytes)
            _write_to_disk(fd, facts.trailer(), size)
            return facts
        finally:
            os.close(fd)

    def _stream(
        self,
        reader: ImageReader,
        fd: int,
        stop: threading.Event,
        loop: asyncio.AbstractEventLoop,
        on_bytes: Callable[[int], None],
    ) -> EntryFacts:
        whole = hashlib.new(self.expected.hash_algo)
        md5 = hashlib.md5(usedforsecurity=False) if self.expected.checksum else None
        blocks = BlockDigester()
        digests: list[bytes] = []
        position = 0
        try:
            for segment in read_ahead(reader.segments(DEFAULT_CHUNK_SIZE), stop):
                check_stop(stop)
                if segment.offset != position:
                    raise FillFailed(
                        FillReason.STORE, f"the store skipped to {segment.offset} at {position}"
                    )
                if segment.data is not None:
                    _write_to_disk(fd, segment.data, segment.offset)
                    on_bytes(segment.length)
                    pieces: Iterable[bytes | memoryview] = (segment.data,)
                else:
                    pieces = zero_pieces(segment.length)
                for piece in pieces:
                    check_stop(stop)
                    whole.update(piece)
                    blocks.update(piece)
                    if md5 is not None:
                        md5.update(piece)
                position += segment.length
                done = blocks.take()
                digests += done
                loop.call_soon_threadsafe(self._advance, position, done)
        except (FillFailed, Stopped):
            raise
        except Exception as exc:
            raise FillFailed(
                FillReason.STORE, f"reading image {self.image_id} from its store failed: {exc}"
            ) from exc
        last = blocks.finish()
        digests += last
        self._check(position, whole.hexdigest(), md5.hexdigest() if md5 else None)
        loop.call_soon_threadsafe(self._advance, position, last)
        expected = self.expected
        return EntryFacts(position, expected.hash_algo, expected.hash_value, b"".join(digests))

    def _check(self, received: int, hash_value: str, checksum: str | None) -> None:
        expected = self.expected
        problem = None
        if received != expected.size:
            problem = f"the store gave {received} bytes; the record says {expected.size}"
        elif hash_value != expected.hash_value:
            problem = (
                f"the {expected.hash_algo} of the bytes read is {hash_value}, the image's "
                f"os_hash_value is {expected.hash_value}"
            )
        elif checksum is not None and checksum != expected.checksum:
            problem = f"the md5 of the bytes read is {checksum}; checksum is {expected.checksum}"
        if problem is not None:
            raise FillFailed(
                FillReason.MISMATCH, f"image {self.image_id} was not cached: {problem}"
            )

    def _advance(self, position: int, digests: list[bytes]) -> None:
        self._digests += digests
        self.received = position
        self._last_progress = time.monotonic()
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the end --------------------------------------------------------------------------

    def succeed(self, entry: Entry) -> None:
        """The fill became ``entry``: downloads still following it finish from its file."""
        self.done.set_result(entry)
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The fill ended without an entry: the downloads following it stop with ``error``."""
        if not self.done.done():
            self.done.set_exception(error)
        self._wake()

    def close_reader(self) -> None:
        """Close the shared descriptor (once the fill ended and no download reads it), after
        the block reads still running in threads."""
        fd, self._read_fd = self._read_fd, None
        reads, self._blocks = list(self._blocks.values()), OrderedDict()
        if fd is None:
            return
        pending = [read for read in reads if not read.done()]
        if pending:
            asyncio.gather(*pending, return_exceptions=True).add_done_callback(
                lambda _: os.close(fd)
            )
        else:
            os.close(fd)


def _write_to_disk(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = _disk(lambda: os.pwrite(fd, view, offset))  # noqa: B023 (called at once)
        view, offset = view[written:], offset + written


def _disk(call: Callable[[], T]) -> T:
    """Run a write to the cache's own disk; its failure is the disk's, not the store's."""
    try:
        return call()
    except OSError as exc:
        raise FillFailed(FillReason.DISK, f"the cache directory refused a write: {exc}") from exc
