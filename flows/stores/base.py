"""The store protocol every backend implements, and what a write reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

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
    a :class:`flows.errors.StoreError` having left nothing behind.
    """

    @property
    def name(self) -> str:
        """The store's configured name (``central``, ``dcn0``, ...)."""
        ...

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        """Write the whole image; zero runs are never written.

        ``task_id`` is the import task writing it: a store that can records it with the data,
        so that a later attempt knows an unrecorded leftover as imgworker's own.
        """
        ...

    async def discard(self, image_id: str) -> None:
        """Remove whatever imgworker left of ``image_id`` in this store, finished or partial.

        Used before a retried or resumed task writes again: a dead attempt may have left data
        behind that no location records, possibly still held by the dead writer (the store
        frees it, or waits until it can). Data under that name that imgworker did not write
        is refused (:class:`flows.errors.StoreFailed`), never removed.
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


@runtime_checkable
class InPlaceWritable(Protocol):
    """A store whose images are local files that another writer may fill in place.

    ``qemu-img convert`` writes its output straight into :meth:`reserve`'s hidden file, which
    :meth:`publish` then makes the image atomically: the converted data is written once, to
    the store, instead of to the staging area and then copied.
    """

    def reserve(self, image_id: str) -> Path:
        """Create a hidden, empty file for ``image_id``'s data and return it (blocking).

        Nothing in it is visible as an image; :meth:`Store.discard` removes it.
        """
        ...

    async def publish(self, image_id: str, partial: Path) -> StoredImage:
        """Make the filled ``partial`` the image: durable, then renamed into place at once.

        On failure nothing is visible, and ``partial`` is left where it is, to its owner.
        """
        ...

    def local_path(self, url: str) -> Path:
        """The file behind one of this store's locations."""
        ...
