"""Reading an image as data extents and known-zero runs, so that holes are never read.

An :class:`ImageReader` yields :class:`Segment` objects in offset order: each is either data
(``data`` holds the bytes) or a run of zeros (``data is None``). Consumers (hashers, stores)
feed zeros to hashes from a shared zero buffer and never write zero runs.

Readers are *blocking*: call :meth:`ImageReader.segments` from a worker thread, never on the
event loop.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from flows.threads import check_stop
from flows.writeback import start_writeback

#: Default size of one data chunk: large enough to amortise syscalls and thread hand-offs,
#: small enough to keep several in flight within the worker's memory budget.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024

_ZEROS = bytes(DEFAULT_CHUNK_SIZE)

#: errno values that say the kernel cannot copy between two files (use read and write).
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of an image: ``length`` bytes at ``offset``, zeros when ``data`` is None."""

    offset: int
    length: int
    data: bytes | None

    @property
    def is_zero(self) -> bool:
        """True when this segment is a run of zeros that must not be read or written."""
        return self.data is None


class ImageReader(Protocol):
    """A source of image bytes that knows where its zeros are."""

    @property
    def size(self) -> int:
        """The full size of the image in bytes, zeros included."""
        ...

    def segments(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Segment]:
        """Yield the image in offset order as data chunks and zero runs (blocking)."""
        ...

    def close(self) -> None:
        """Release what the reader holds (whoever opened it closes it; twice is fine)."""
        ...


class ReadFailures:
    """An :class:`ImageReader` whose read failures are raised as ``failure(error)``.

    Copying from one file to another meets :class:`OSError` on both sides; wrapping the
    reading side tells them apart (the source's fault, or the store's, not the target's).
    """

    def __init__(self, reader: ImageReader, failure: Callable[[OSError], Exception]) -> None:
        self._reader = reader
        self._failure = failure

    @property
    def size(self) -> int:
        """The wrapped reader's size."""
        return self._reader.size

    def segments(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Segment]:
        """The wrapped reader's segments; an OSError raised reading them is translated."""
        try:
            yield from self._reader.segments(chunk_size)
        except OSError as exc:
            raise self._failure(exc) from exc

    def close(self) -> None:
        """Close the wrapped reader."""
        self._reader.close()


def is_all_zero(chunk: bytes | memoryview) -> bool:
    """Tell whether ``chunk`` holds only zero bytes (a memcmp against a zero buffer).

    ``bytes.startswith`` takes any contiguous buffer and compares with memcmp (~25 GB/s);
    ``==`` between a memoryview and bytes compares element by element (~0.5 GB/s).
    """
    view = memoryview(chunk)
    for start in range(0, len(view), len(_ZEROS)):
        if not _ZEROS.startswith(view[start : start + len(_ZEROS)]):
            return False
    return True


def zero_pieces(length: int, piece: int = DEFAULT_CHUNK_SIZE) -> Iterator[memoryview]:
    """Yield ``length`` zero bytes as views of one shared buffer (for hashing zero runs)."""
    zeros = memoryview(_ZEROS)[: min(piece, len(_ZEROS))]
    while length > 0:
        step = min(length, len(zeros))
        yield zeros[:step]
        length -= step


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, length)`` of the data extents of an open file, skipping its holes.

    Falls back to one extent covering the whole file where the filesystem does not support
    ``SEEK_DATA``/``SEEK_HOLE``.
    """
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset: the rest is a hole
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield offset, size - offset
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end > start:
            yield start, end - start
        offset = end


class SparseFileReader:
    """An :class:`ImageReader` over a local file: holes are skipped, zero chunks detected.

    The file is opened at once, so a reader made before the file is renamed or removed still
    reads it. :meth:`sharing` reads through a descriptor the caller keeps (``pread`` and
    ``SEEK_DATA`` never rely on the shared file offset, so any number of readers may share
    one descriptor, from any threads).
    """

    def __init__(self, path: str | os.PathLike[str], *, fd: int | None = None) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = os.open(self.path, os.O_RDONLY) if fd is None else fd
        # A reader dropped unclosed (its task cancelled before it ran) still closes its file.
        self._release = weakref.finalize(self, os.close, self._fd) if fd is None else None
        self._size = os.fstat(self._fd).st_size

    @classmethod
    def sharing(cls, fd: int, path: str | os.PathLike[str]) -> SparseFileReader:
        """A reader over ``fd`` (the file at ``path``), which its owner keeps and closes."""
        return cls(path, fd=fd)

    @property
    def size(self) -> int:
        """The file's apparent size."""
        return self._size

    def segments(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Segment]:
        """Yield data chunks read with ``pread`` and zero runs for holes and zero chunks."""
        if self._fd is None:
            raise ValueError(f"reader of {self.path} is closed")
        yield from self._segments(self._fd, chunk_size)

    def copy_to(
        self,
        fd: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> tuple[int, int] | None:
        """Copy the data extents into the open file ``fd`` in the kernel; (written, skipped).

        ``copy_file_range`` moves the bytes without bringing them into Python; holes stay
        holes (the target keeps the source's allocation). Returns None, having written
        nothing, when the kernel cannot copy between these two files (another filesystem).
        Blocking: run in a thread.
        """
        if self._fd is None:
            raise ValueError(f"reader of {self.path} is closed")
        os.ftruncate(fd, self._size)
        written = skipped = position = 0
        for start, length in data_extents(self._fd, self._size):
            if start > position and progress:
                progress(0, start - position)
            skipped += start - position
            offset, end = start, start + length
            while offset < end:
                check_stop(stop)
                try:
                    copied = os.copy_file_range(
                        self._fd, fd, min(chunk_size, end - offset), offset, offset
                    )
                except OSError as exc:
                    if written == 0 and exc.errno in _NO_KERNEL_COPY:
                        return None
                    raise
                if copied == 0:
                    raise OSError(f"{self.path}: unexpected end of file at {offset}")
                start_writeback(fd, offset, copied)
                offset += copied
                written += copied
                if progress:
                    progress(copied, 0)
            position = end
        if position < self._size and progress:
            progress(0, self._size - position)
        return written, skipped + self._size - position

    def close(self) -> None:
        """Close the file (unless the descriptor is shared)."""
        self._fd = None
        if self._release is not None:
            self._release()

    def __enter__(self) -> SparseFileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _segments(self, fd: int, chunk_size: int) -> Iterator[Segment]:
        position = 0
        for start, length in data_extents(fd, self._size):
            if start > position:
                yield Segment(position, start - position, None)
            end = start + length
            offset = start
            while offset < end:
                want = min(chunk_size, end - offset)
                chunk = os.pread(fd, want, offset)
                if not chunk:
                    raise OSError(f"{self.path}: unexpected end of file at {offset}")
                got = len(chunk)
                yield Segment(offset, got, None if is_all_zero(chunk) else chunk)
                offset += got
            position = end
        if position < self._size:
            yield Segment(position, self._size - position, None)


def write_sparse(
    reader: ImageReader,
    fd: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """Copy ``reader`` into the open file ``fd`` writing data only; return (written, skipped).

    The file is first sized to the image, so zero runs stay holes. Blocking: run in a thread;
    setting ``stop`` makes it raise :class:`flows.threads.Stopped` at the next chunk.
    """
    os.ftruncate(fd, reader.size)
    written = skipped = 0
    for segment in reader.segments(chunk_size):
        check_stop(stop)
        if segment.data is None:
            skipped += segment.length
            if progress:
                progress(0, segment.length)
            continue
        pwrite_all(fd, segment.data, segment.offset)
        start_writeback(fd, segment.offset, segment.length)
        written += segment.length
        if progress:
            progress(segment.length, 0)
    return written, skipped


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset``: ``pwrite`` may write less (a disk that fills up
    writes what fits and says so only by the count; the next call raises ENOSPC)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written == 0:
            raise OSError(errno.EIO, "the file system accepted no bytes")
        view, offset = view[written:], offset + written


#: Granularity at which :func:`split_zero_runs` looks for zeros inside a data chunk.
ZERO_BLOCK = 64 * 1024


def split_zero_runs(
    offset: int, data: bytes | memoryview, block: int = ZERO_BLOCK
) -> Iterator[Segment]:
    """Yield ``data`` (found at ``offset``) as data segments and zero runs of whole blocks.

    For sources that only know allocation coarsely (an RBD object, a decompressed stream):
    a chunk that is half zeros should not cost a write of those zeros.
    """
    view = memoryview(data)
    for start, end, zero in _zero_runs(view, block):
        yield Segment(offset + start, end - start, None if zero else bytes(view[start:end]))


def _zero_runs(view: memoryview, block: int) -> Iterator[tuple[int, int, bool]]:
    """``(start, end, all_zero)`` of the runs of whole blocks that are, or are not, zeros."""
    start = 0
    while start < len(view):
        end = min(start + block, len(view))
        zero = is_all_zero(view[start:end])
        while end < len(view):
            next_end = min(end + block, len(view))
            if is_all_zero(view[end:next_end]) != zero:
                break
            end = next_end
        yield start, end, zero
        start = end


def write_skipping_zeros(fd: int, chunk: memoryview, block: int = ZERO_BLOCK) -> None:
    """Write ``chunk`` at ``fd``'s current offset, seeking over all-zero blocks (holes).

    The caller sets the file's final size with ``ftruncate`` (a trailing hole has no bytes).
    The data is written straight from ``chunk`` (no copy).
    """
    for start, end, zero in _zero_runs(chunk, block):
        if zero:
            os.lseek(fd, end - start, os.SEEK_CUR)
            continue
        view = chunk[start:end]
        while view:
            view = view[os.write(fd, view) :]
