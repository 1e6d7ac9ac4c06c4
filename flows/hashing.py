"""md5 ``checksum`` and sha512 ``os_hash_value`` of the data to store, computed once.

The two digests run in two threads at once (hashlib releases the GIL on large buffers), each
over its own sparse pass of the file: holes are never read, their zeros are fed from one shared
zero buffer. Reading the file twice costs little next to hashing it (page cache).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

from flows.records import OS_HASH_ALGO, DataFacts
from flows.sparse import DEFAULT_CHUNK_SIZE, SparseFileReader, zero_pieces
from flows.threads import check_stop, run_stoppable


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
) -> str:
    """Hex digest of everything ``reader`` yields, zero runs fed from a zero buffer (blocking)."""
    digest = hashlib.new(algorithm)
    for segment in reader.segments(chunk_size):
        check_stop(stop)
        if segment.data is not None:
            digest.update(segment.data)
        else:
            for zeros in zero_pieces(segment.length):
                digest.update(zeros)
    return digest.hexdigest()


async def compute_data_facts(path: Path, virtual_size: int, chunk_size: int) -> DataFacts:
    """Hash ``path`` with md5 and sha512 in parallel threads; return what to record."""
    size = path.stat().st_size
    md5, sha512 = await asyncio.gather(
        run_stoppable(lambda stop: digest_file(path, "md5", chunk_size, stop)),
        run_stoppable(lambda stop: digest_file(path, OS_HASH_ALGO, chunk_size, stop)),
    )
    return DataFacts(size=size, virtual_size=virtual_size, checksum=md5, os_hash_value=sha512)
