"""What can go wrong in the cache, by type: a fill that failed, a cached block that rotted."""

from __future__ import annotations

from enum import StrEnum

from flows.errors import TransientError


class FillReason(StrEnum):
    """Why a fill did not become a cache entry (the ``reason`` label of its metric)."""

    #: The bytes did not match the image's ``os_hash_value`` (or ``checksum``, or size).
    MISMATCH = "mismatch"
    #: The store could not be read.
    STORE = "store"
    #: The cache's own disk refused a write.
    DISK = "disk"
    #: Every download (and prefetch) waiting for it went away.
    ABANDONED = "abandoned"
    #: The store sent nothing for ``[cache] stall_seconds``.
    STALLED = "stalled"
    #: The image was deleted from the cache (or the image itself) while it filled.
    UNWANTED = "unwanted"


class FillFailed(TransientError):
    """A fill ended without an entry; ``why`` says why (a later download may fill again)."""

    reason = "cache_fill"

    def __init__(self, why: FillReason, message: str) -> None:
        super().__init__(message)
        self.why = why


class CorruptBlock(TransientError):
    """A block read from the cache does not match the digest recorded when it was filled.

    The entry is dropped at once; the download that met it is cut off (never completed with
    bad bytes) and the next one reads the store again.
    """

    reason = "cache_corrupt"


class InvalidEntry(Exception):
    """A file in the cache directory is not a complete, well-formed entry (it is removed)."""


class CacheDirectoryUnusable(Exception):
    """The cache directory cannot be this process's: another one holds it, or it cannot be
    created or written (the API does not start: a configuration to fix, not an outage)."""
