"""md5 ``checksum`` and sha512 ``os_hash_value`` of the data to store, computed once.

The two digests run in two threads at once (hashlib releases the GIL on large buffers), each
over its own sparse pass of the file: holes are never read, their zeros are fed from one shared
zero buffer. Reading the file twice costs little next to hashing it (page cache). The file is
opened before hashing starts, so it may be renamed into a store (or removed) meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from flows.observer import FlowObserver, NullObserver
from flows.records import OS_HASH_ALGO, DataFacts
from flows.sparse import DEFAULT_CHUNK_SIZE, SparseFileReader, zero_pieces
from flows.threads import check_stop, run_stoppable

#: The phase the hashing reports its progress as (:meth:`FlowObserver.phase_started`).
CHECKSUMS = "checksums"


def digest_file(
    path: Path,
    algorithm: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    stop: threading.Event | None = None,
) -> str:
    """Hex digest of the whole file, zeros included, without reading its holes (blocking)."""
    with SparseFileReader(path) as reader:
        return digest_reader(reader, algorithm, chunk_size, stop)


def digest_reader(
    reader: SparseFileReader,
    algorithm: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Hex digest of everything ``reader`` yields, zero runs fed from a zero buffer (blocking).

    ``progress`` gets the length of each piece hashed (a long hole takes time too).
    """
    digest = hashlib.new(algorithm)
    count = progress or _ignore
    for segment in reader.segments(chunk_size):
        check_stop(stop)
        if segment.data is not None:
            digest.update(segment.data)
            count(segment.length)
            continue
        for piece in zero_pieces(segment.length, chunk_size):
            check_stop(stop)
            digest.update(piece)
            count(len(piece))
    return digest.hexdigest()


def _ignore(nbytes: int) -> None:
    """No progress wanted."""


async def start_hashing(
    path: Path,
    virtual_size: int,
    chunk_size: int,
    name: str,
    observer: FlowObserver | None = None,
) -> asyncio.Task[DataFacts]:
    """Open ``path`` now and hash it in a background task (see the module docstring).

    ``observer`` sees the :data:`CHECKSUMS` phase advance as the slower digest does.
    """
    md5_reader, sha_reader = await asyncio.to_thread(
        lambda: (SparseFileReader(path), SparseFileReader(path))
    )
    pace = _SlowerOf(observer or NullObserver(), md5_reader.size)
    return asyncio.create_task(
        _data_facts(md5_reader, sha_reader, virtual_size, chunk_size, pace), name=name
    )


async def compute_data_facts(
    path: Path, virtual_size: int, chunk_size: int, observer: FlowObserver | None = None
) -> DataFacts:
    """Hash ``path`` with md5 and sha512 in parallel threads; return what to record."""
    return await (
        await start_hashing(path, virtual_size, chunk_size, f"hash-{path.name}", observer)
    )


async def _data_facts(
    md5_reader: SparseFileReader,
    sha_reader: SparseFileReader,
    virtual_size: int,
    chunk_size: int,
    pace: _SlowerOf,
) -> DataFacts:
    try:
        md5, sha512 = await asyncio.gather(
            run_stoppable(
                lambda stop: digest_reader(md5_reader, "md5", chunk_size, stop, pace.counter(0))
            ),
            run_stoppable(
                lambda stop: digest_reader(
                    sha_reader, OS_HASH_ALGO, chunk_size, stop, pace.counter(1)
                )
            ),
        )
    finally:
        md5_reader.close()
        sha_reader.close()
    return DataFacts(
        size=md5_reader.size, virtual_size=virtual_size, checksum=md5, os_hash_value=sha512
    )


class _SlowerOf:
    """Reports, as the :data:`CHECKSUMS` phase, the bytes both digests have hashed."""

    def __init__(self, observer: FlowObserver, total: int) -> None:
        self._observer = observer
        self._lock = threading.Lock()
        self._done = [0, 0]
        self._reported = 0
        observer.phase_started(CHECKSUMS, total)

    def counter(self, index: int) -> Callable[[int], None]:
        """The progress callback of digest number ``index`` (called from its thread)."""

        def count(nbytes: int) -> None:
            with self._lock:
                self._done[index] += nbytes
                both = min(self._done)
                if both > self._reported:
                    self._observer.phase_advanced(CHECKSUMS, both - self._reported)
                    self._reported = both

        return count
