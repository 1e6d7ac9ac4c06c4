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


async def start_hashing(
    path: Path, virtual_size: int, chunk_size: int, name: str
) -> asyncio.Task[DataFacts]:
    """Open ``path`` now and hash it in a background task (see the module docstring)."""
    md5_reader, sha_reader = await asyncio.to_thread(
        lambda: (SparseFileReader(path), SparseFileReader(path))
    )
    return asyncio.create_task(
        _data_facts(md5_reader, sha_reader, virtual_size, chunk_size), name=name
    )


async def compute_data_facts(path: Path, virtual_size: int, chunk_size: int) -> DataFacts:
    """Hash ``path`` with md5 and sha512 in parallel threads; return what to record."""
    return await (await start_hashing(path, virtual_size, chunk_size, f"hash-{path.name}"))


async def _data_facts(
    md5_reader: SparseFileReader,
    sha_reader: SparseFileReader,
    virtual_size: int,
    chunk_size: int,
) -> DataFacts:
    try:
        md5, sha512 = await asyncio.gather(
            run_stoppable(lambda stop: digest_reader(md5_reader, "md5", chunk_size, stop)),
            run_stoppable(lambda stop: digest_reader(sha_reader, OS_HASH_ALGO, chunk_size, stop)),
        )
    finally:
        md5_reader.close()
        sha_reader.close()
    return DataFacts(
        size=md5_reader.size, virtual_size=virtual_size, checksum=md5, os_hash_value=sha512
    )
