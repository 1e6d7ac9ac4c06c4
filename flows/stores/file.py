"""The directory store: one file per image, written sparsely and made visible atomically."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from flows.local_io import LocalPlace, failing_at, local_failure
from flows.sparse import (
    ImageReader,
    ReadFailures,
    SparseFileReader,
    data_extents,
    write_sparse,
)
from flows.stores.base import ProgressCallback, StoredImage
from flows.threads import run_stoppable


@dataclass(frozen=True, slots=True)
class FileStoreConfig:
    """``[stores.NAME]`` with ``type = "file"``: a directory."""

    type: Literal["file"]
    #: The directory the images live in (created when missing).
    path: str
    #: Bytes per write.
    chunk_size: int = 8 * 1024 * 1024


class FileStore:
    """Images as files named by image id under one directory.

    A write goes to a hidden temporary file that is renamed into place only once all of it is
    on disk, so a partial image is never visible as a location. Zero runs are seeked over, so
    holes in the source stay holes in the store; from a local file, the data extents are
    copied by the kernel (``copy_file_range``), never passing through Python.
    """

    def __init__(self, name: str, config: FileStoreConfig) -> None:
        self._name = name
        self.config = config
        self.root = Path(config.path).absolute()
        #: Where a local file-system failure is said to have happened.
        self.place = LocalPlace(self.root, name)

    @property
    def name(self) -> str:
        """The store's configured name."""
        return self._name

    def url_for(self, image_id: str) -> str:
        """The location URL of ``image_id`` in this store."""
        return (self.root / image_id).as_uri()

    def owns(self, url: str) -> bool:
        """True for ``file://`` URLs directly under this store's directory."""
        parsed = urlparse(url)
        return parsed.scheme == "file" and Path(unquote(parsed.path)).parent == self.root

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        """Write the image sparsely into ``<root>/<image_id>`` (in a worker thread).

        ``task_id`` is not recorded: a hidden partial file is the write's own by its name.
        """
        with failing_at(self.place, "write the image"):
            return await run_stoppable(lambda stop: self._add(image_id, reader, progress, stop))

    def _add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None,
        stop: threading.Event,
    ) -> StoredImage:
        partial = self._new_partial(image_id)
        fd = os.open(partial, os.O_WRONLY)
        try:
            written, skipped = self._write(reader, fd, progress, stop)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            self._rename_into_place(partial, self.root / image_id)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        return StoredImage(self.url_for(image_id), reader.size, written, skipped)

    def _write(
        self,
        reader: ImageReader,
        fd: int,
        progress: ProgressCallback | None,
        stop: threading.Event,
    ) -> tuple[int, int]:
        """Copy a local file in the kernel when possible, else write what the reader yields."""
        chunk = self.config.chunk_size
        if isinstance(reader, SparseFileReader):
            copied = reader.copy_to(fd, chunk, progress, stop)
            if copied is not None:
                return copied
        return write_sparse(reader, fd, chunk, progress, stop)

    def reserve(self, image_id: str) -> Path:
        """Create a hidden, empty file that :meth:`publish` later makes the image (blocking)."""
        return self._new_partial(image_id)

    async def publish(self, image_id: str, partial: Path) -> StoredImage:
        """Make the filled ``partial`` the image: fsync it, rename it into place atomically.

        On failure nothing is visible and ``partial`` stays where it is (its owner removes it).
        """
        with failing_at(self.place, "write the image"):
            return await run_stoppable(lambda stop: self._publish(image_id, partial))

    def _publish(self, image_id: str, partial: Path) -> StoredImage:
        fd = os.open(partial, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            written = sum(length for _, length in data_extents(fd, size))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._rename_into_place(partial, self.root / image_id)
        return StoredImage(self.url_for(image_id), size, written, size - written)

    def _new_partial(self, image_id: str) -> Path:
        """A new hidden ``.<image_id>.<random>.partial`` (the names :meth:`discard` removes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{image_id}.{uuid.uuid4().hex}.partial"
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        return partial

    def _rename_into_place(self, partial: Path, final: Path) -> None:
        """Rename durably; if the directory cannot be made durable, put ``partial`` back."""
        os.replace(partial, final)
        try:
            _fsync_directory(self.root)
        except BaseException:
            os.replace(final, partial)
            raise

    async def discard(self, image_id: str) -> None:
        """Remove whatever this store holds of ``image_id``, finished or partial."""
        with failing_at(self.place, f"clear what it holds of {image_id}"):
            await asyncio.to_thread(self._discard, image_id)

    def _discard(self, image_id: str) -> None:
        (self.root / image_id).unlink(missing_ok=True)
        if self.root.is_dir():
            for partial in self.root.glob(f".{image_id}.*.partial"):
                partial.unlink(missing_ok=True)

    async def delete(self, url: str) -> None:
        """Remove the image file behind ``url``; a file already gone is fine."""
        path = self.local_path(url)
        with failing_at(self.place, f"delete {path.name}"):
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def open(self, url: str) -> ImageReader:
        """A sparse reader over the image file (a failed read is this store's error)."""
        path = self.local_path(url)
        action = f"read {path.name}"
        with failing_at(self.place, action):
            reader = await asyncio.to_thread(SparseFileReader, path)
        return ReadFailures(reader, lambda exc: local_failure(self.place, action, exc))

    async def exists(self, url: str) -> bool:
        """True when the image file exists."""
        path = self.local_path(url)
        with failing_at(self.place, f"look for {path.name}"):
            return await asyncio.to_thread(path.is_file)

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own file."""

    def local_path(self, url: str) -> Path:
        """The file behind ``url``; ValueError when ``url`` is not this store's."""
        if not self.owns(url):
            raise ValueError(f"{url!r} is not a location of file store {self.name!r}")
        return Path(unquote(urlparse(url).path))


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
