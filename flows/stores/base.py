"""The store protocol every backend implements, and what a write reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from flows.sparse import ImageReader

#: Called (from any thread) with the number of bytes just handled: ``(written, skipped)``.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class StoredImage:
    """The result of a successful :meth:`Store.add`."""

    url: str
    size: int
    bytes_written: int
    bytes_skipped: int


class Store(Protocol):
    """A named place that holds image data (a directory, a Ceph pool, ...).

    ``add`` either returns a location that is complete and durable, or raises
    :class:`flows.errors.StoreWriteFailed` having left nothing behind.
    """

    @property
    def name(self) -> str:
        """The store's configured name (``central``, ``dcn0``, ...)."""
        ...

    async def add(
        self, image_id: str, reader: ImageReader, progress: ProgressCallback | None = None
    ) -> StoredImage:
        """Write the whole image; zero runs are never written."""
        ...

    async def discard(self, image_id: str) -> None:
        """Remove whatever this store holds of ``image_id``, finished or partial.

        Used before a retried or resumed task writes again: a dead attempt may have left data
        behind that no location records.
        """
        ...

    async def delete(self, url: str) -> None:
        """Remove the data behind ``url``; a missing location is not an error."""
        ...

    async def open(self, url: str) -> ImageReader:
        """Open an existing location for reading (copy-image's source)."""
        ...

    async def exists(self, url: str) -> bool:
        """Tell whether ``url`` names data that this store holds."""
        ...

    def owns(self, url: str) -> bool:
        """Tell whether ``url`` is a location of this store (by scheme and place)."""
        ...

    async def close(self) -> None:
        """Release connections (the store may be used again: it reconnects)."""
        ...
