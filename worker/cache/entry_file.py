"""One cache entry on disk: the image's bytes, then a trailer that vouches for them.

An entry is a single file, so that one ``rename`` publishes data and trailer together::

    [ image data: size bytes (holes stay holes) ]
    [ block digests: one xxh3-128 per BLOCK_SIZE block of the data ]
    [ footer: magic, version, block size, size, hash algorithm, os_hash_value, own digest ]

The trailer is written only after every byte matched the image's ``os_hash_value`` (and
``checksum``). The block digests let a reader check each block it serves, a Range request
only the blocks it touches, at a cost measured in docs/cache.md. The footer's own digest
covers the block digests and the footer, so a rotten trailer is found as surely as a rotten
block. Every function here is blocking: call them from a thread.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import xxhash

from worker.cache.errors import CorruptBlock, InvalidEntry

#: Bytes per checked block: large enough that a thread hand-off per block costs nothing,
#: small enough that a Range request reads little it does not send.
BLOCK_SIZE = 4 * 1024 * 1024
DIGEST_SIZE = 16
MAGIC = b"IMGWCACH"
VERSION = 1
#: magic, version, block size, size, hash algorithm, hash value (hex); then its digest.
_FOOTER = struct.Struct("<8sIIQ16s128s")
FOOTER_SIZE = _FOOTER.size + DIGEST_SIZE


def block_digest(data: bytes | memoryview) -> bytes:
    """The digest of one block, as recorded in the trailer."""
    return xxhash.xxh3_128_digest(data)


def block_count(size: int) -> int:
    """How many blocks ``size`` bytes make (the last one may be short)."""
    return -(-size // BLOCK_SIZE)


def trailer_length(size: int) -> int:
    """Bytes of trailer an entry of ``size`` bytes carries."""
    return block_count(size) * DIGEST_SIZE + FOOTER_SIZE


def footprint(size: int) -> int:
    """Bytes an entry of an image of ``size`` bytes takes in the cache, trailer included."""
    return size + trailer_length(size)


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What an entry's trailer says: the image it holds and each block's digest."""

    size: int
    hash_algo: str
    hash_value: str
    #: The block digests, concatenated (``DIGEST_SIZE`` bytes each).
    digests: bytes

    def digest(self, index: int) -> bytes:
        """The recorded digest of block ``index``."""
        return self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    def trailer(self) -> bytes:
        """The trailer that follows the data."""
        footer = _FOOTER.pack(
            MAGIC,
            VERSION,
            BLOCK_SIZE,
            self.size,
            self.hash_algo.encode(),
            self.hash_value.encode(),
        )
        return self.digests + footer + block_digest(self.digests + footer)


def read_trailer(fd: int) -> EntryFacts:
    """The facts of the entry open at ``fd``; :class:`InvalidEntry` unless well-formed."""
    length = os.fstat(fd).st_size
    if length < FOOTER_SIZE:
        raise InvalidEntry(f"{length} bytes: too short to hold a trailer")
    footer = _pread_exactly(fd, FOOTER_SIZE, length - FOOTER_SIZE)
    magic, version, block_size, size, algo, value = _FOOTER.unpack(footer[: _FOOTER.size])
    if magic != MAGIC or version != VERSION:
        raise InvalidEntry("no imgworker cache trailer (magic or version)")
    if block_size != BLOCK_SIZE:
        raise InvalidEntry(f"written with {block_size}-byte blocks, not {BLOCK_SIZE}")
    if length != size + trailer_length(size):
        raise InvalidEntry(f"{length} bytes do not match a {size}-byte image and its trailer")
    digests = _pread_exactly(fd, block_count(size) * DIGEST_SIZE, size)
    if block_digest(digests + footer[: _FOOTER.size]) != footer[_FOOTER.size :]:
        raise InvalidEntry("the trailer does not match its own digest")
    return EntryFacts(
        size=size,
        hash_algo=algo.rstrip(b"\0").decode(),
        hash_value=value.rstrip(b"\0").decode(),
        digests=digests,
    )


def read_block(fd: int, index: int, size: int, expected: bytes | None) -> bytes:
    """Block ``index`` of the data at ``fd``, checked against ``expected`` (None: unchecked).

    :class:`CorruptBlock` when the bytes on disk are not the ones the fill wrote.
    """
    offset = index * BLOCK_SIZE
    data = _pread_exactly(fd, min(BLOCK_SIZE, size - offset), offset)
    if expected is not None and block_digest(data) != expected:
        raise CorruptBlock(
            f"cached block {index} (bytes {offset}-{offset + len(data) - 1}) no longer matches "
            "the digest recorded when it was filled"
        )
    return data


def _pread_exactly(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise InvalidEntry(f"{len(data)} bytes at offset {offset} where {length} were expected")
    return data


class BlockDigester:
    """Digests of consecutive blocks of a byte stream, as the fill writes it."""

    def __init__(self, block_size: int = BLOCK_SIZE) -> None:
        self._block_size = block_size
        self._state = xxhash.xxh3_128()
        self._filled = 0
        self._done: list[bytes] = []

    def update(self, data: bytes | memoryview) -> None:
        """Feed the next bytes."""
        view = memoryview(data)
        while view:
            take = min(len(view), self._block_size - self._filled)
            self._state.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self._block_size:
                self._close_block()

    def take(self) -> list[bytes]:
        """The digests of blocks completed since the last call."""
        done, self._done = self._done, []
        return done

    def finish(self) -> list[bytes]:
        """Close the last, short block (if any) and return what :meth:`take` would."""
        if self._filled:
            self._close_block()
        return self.take()

    def _close_block(self) -> None:
        self._done.append(self._state.digest())
        self._state.reset()
        self._filled = 0
