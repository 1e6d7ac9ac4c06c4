"""md5 ``checksum`` and sha512 ``os_hash_value`` of the data to store, computed once.

The two digests run in two threads at once (hashlib releases the GIL on large buffers), each
over its own sparse pass of the file: holes are never read, their zeros are fed from one shared
zero buffer. Reading the file twice costs little next to hashing it (page cache).
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
    progress: Callable[[int], None] | None = None,
) -> str:
    """Hex digest of the whole file, zeros included, without reading its holes (blocking).

    ``progress`` gets the length of each piece hashed (a long hole takes time too).
    """
    digest = hashlib.new(algorithm)
    count = progress or _ignore
    for segment in SparseFileReader(path).segments(chunk_size):
        check_stop(stop)
        if segment.data is not None:
            digest.update(segment.data)
            count(segment.length)
        else:
            for zeros in zero_pieces(segment.length):
                digest.update(zeros)
                count(len(zeros))
    return digest.hexdigest()


def _ignore(nbytes: int) -> None:
    """No progress wanted."""


async def compute_data_facts(
    path: Path, virtual_size: int, chunk_size: int, observer: FlowObserver | None = None
) -> DataFacts:
    """Hash ``path`` with md5 and sha512 in parallel threads; return what to record.

    ``observer`` sees the :data:`CHECKSUMS` phase advance as the slower digest does.
    """
    size = path.stat().st_size
    pace = _SlowerOf(observer or NullObserver(), size)
    md5, sha512 = await asyncio.gather(
        run_stoppable(lambda stop: digest_file(path, "md5", chunk_size, stop, pace.counter(0))),
        run_stoppable(
            lambda stop: digest_file(path, OS_HASH_ALGO, chunk_size, stop, pace.counter(1))
        ),
    )
    return DataFacts(size=size, virtual_size=virtual_size, checksum=md5, os_hash_value=sha512)


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
