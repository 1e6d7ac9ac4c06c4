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

from flows.errors import StoreWriteFailed
from flows.sparse import ImageReader, SparseFileReader, write_sparse
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
    holes in the source stay holes in the store.
    """

    def __init__(self, name: str, config: FileStoreConfig) -> None:
        self._name = name
        self.config = config
        self.root = Path(config.path).absolute()

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
        self, image_id: str, reader: ImageReader, progress: ProgressCallback | None = None
    ) -> StoredImage:
        """Write the image sparsely into ``<root>/<image_id>`` (in a worker thread)."""
        try:
            return await run_stoppable(lambda stop: self._add(image_id, reader, progress, stop))
        except OSError as exc:
            raise StoreWriteFailed(
                self.name, f"cannot write {self.root}: {exc.strerror or exc}"
            ) from exc

    def _add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None,
        stop: threading.Event,
    ) -> StoredImage:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / image_id
        partial = self.root / f".{image_id}.{uuid.uuid4().hex}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            written, skipped = write_sparse(reader, fd, self.config.chunk_size, progress, stop)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(partial, final)
        _fsync_directory(self.root)
        return StoredImage(self.url_for(image_id), reader.size, written, skipped)

    async def discard(self, image_id: str) -> None:
        """Remove whatever this store holds of ``image_id``, finished or partial."""
        await asyncio.to_thread(self._discard, image_id)

    def _discard(self, image_id: str) -> None:
        (self.root / image_id).unlink(missing_ok=True)
        if self.root.is_dir():
            for partial in self.root.glob(f".{image_id}.*.partial"):
                partial.unlink(missing_ok=True)

    async def delete(self, url: str) -> None:
        """Remove the image file behind ``url``; a file already gone is fine."""
        path = self._path(url)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def open(self, url: str) -> ImageReader:
        """A sparse reader over the image file."""
        path = self._path(url)
        try:
            return await asyncio.to_thread(SparseFileReader, path)
        except OSError as exc:
            raise StoreWriteFailed(self.name, f"cannot read {path}: {exc.strerror}") from exc

    async def exists(self, url: str) -> bool:
        """True when the image file exists."""
        return await asyncio.to_thread(self._path(url).is_file)

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own file."""

    def _path(self, url: str) -> Path:
        if not self.owns(url):
            raise ValueError(f"{url!r} is not a location of file store {self.name!r}")
        return Path(unquote(urlparse(url).path))


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
