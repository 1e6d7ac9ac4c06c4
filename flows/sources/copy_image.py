"""copy-image: the bits of an active image, read back from a store that has them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from flows.errors import ImageStateConflict, SourceError, StoreError
from flows.local_io import LocalPlace, failing_at
from flows.records import ImageRecord, Location
from flows.sparse import ImageReader, write_sparse
from flows.states import LocationStatus
from flows.stores.base import Store
from flows.threads import run_stoppable


def pick_source(image: ImageRecord, stores: Mapping[str, Store], targets: list[str]) -> Location:
    """The first active location in a configured store that is not a target."""
    for location in image.locations:
        if (
            location.status == LocationStatus.ACTIVE
            and location.store in stores
            and location.store not in targets
        ):
            return location
    raise ImageStateConflict(
        f"image {image.id} has no active location in a configured store to copy from "
        f"(locations: {', '.join(loc.store for loc in image.locations) or 'none'})"
    )


async def copy_to_staging(
    store: Store,
    location: Location,
    dest: Path,
    chunk_size: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy the image at ``location`` into ``dest`` sparsely; return its size.

    The store's own errors stay as they are (an outage is transient, copy-image retried);
    the staging area failing to take the copy is a :class:`StagingError`.
    """
    try:
        reader = await store.open(location.url)
    except StoreError:
        raise
    except Exception as exc:
        raise SourceError(f"cannot open {location.url} in store {store.name!r}: {exc}") from exc
    try:
        return await run_stoppable(lambda stop: _copy(reader, dest, chunk_size, progress, stop))
    finally:
        reader.close()


def _copy(
    reader: ImageReader,
    dest: Path,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    stop: threading.Event,
) -> int:
    def count(written: int, skipped: int) -> None:
        if progress is not None:
            progress(written + skipped)

    # What a store reads raises the store's errors: an OSError left is the staging area's.
    with failing_at(LocalPlace(dest.parent), "take the copy"):
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            write_sparse(reader, fd, chunk_size, count, stop)
        except BaseException:
            os.close(fd)
            dest.unlink(missing_ok=True)
            raise
        os.close(fd)
    return reader.size
