"""Putting a local file into the staging area for glance-direct (``image-stage``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from flows.errors import ImageStateConflict, SourceError
from flows.sparse import SparseFileReader, write_sparse
from flows.states import ImageStatus
from worker.db.images import SqlImageRepository

#: Statuses from which an upload may be staged (Glance: queued; imgworker: also failed).
STAGEABLE = (ImageStatus.QUEUED, ImageStatus.FAILED)


async def stage_upload(
    images: SqlImageRepository, staging_dir: Path, image_id: str, source: Path
) -> int:
    """Copy ``source`` to ``<staging>/<image_id>`` sparsely and set the image ``uploading``."""
    image = await images.get(image_id)
    if image.status not in STAGEABLE:
        raise ImageStateConflict(
            f"image {image_id} is {image.status}; data can be staged only while it is "
            + " or ".join(STAGEABLE)
        )
    size = await asyncio.to_thread(_copy_sparse, source, staging_dir / image_id)
    await images.set_status(image_id, ImageStatus.UPLOADING)
    return size


def _copy_sparse(source: Path, dest: Path) -> int:
    if not source.is_file():
        raise SourceError(f"{source}: no such file to stage")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".upload")
    with SparseFileReader(source) as reader:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            write_sparse(reader, fd)
        except BaseException:
            os.close(fd)
            partial.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(partial, dest)
        return reader.size
