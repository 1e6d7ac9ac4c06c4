"""Putting bits into the staging area for glance-direct: a local file or an HTTP upload.

Either way the bits go to a hidden partial file first and become ``<staging>/<image_id>``
only once complete, in the same transaction that sets the image ``uploading`` (see
:meth:`SqlImageRepository.mark_staged`): a failed or killed upload leaves no staged file the
record believes in, and nothing in the record about it. Zero runs are left as holes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles

from flows.errors import ImageStateConflict, SafetyRefusal, SourceError
from flows.local_io import LocalPlace, failing_at, local_failure
from flows.observer import FlowObserver, NullObserver
from flows.preconditions import STAGEABLE
from flows.sparse import ReadFailures, SparseFileReader, split_zero_runs, write_sparse
from flows.steps.stage import StageStep
from worker.db.images import SqlImageRepository
from worker.db.usage import Admission

#: Bytes gathered before looking for zero runs and writing.
WRITE_SIZE = 4 * 1024 * 1024
#: A partial upload untouched this long belongs to an upload that died (its writer stopped).
STALE_PARTIAL_SECONDS = 600.0


def partial_path(staging_dir: Path, image_id: str) -> Path:
    """A fresh hidden name for an upload in progress."""
    return staging_dir / f".{image_id}.stage-{uuid.uuid4().hex}.partial"


async def stage_upload(
    images: SqlImageRepository,
    staging_dir: Path,
    image_id: str,
    source: Path,
    observer: FlowObserver | None = None,
) -> int:
    """Copy a local file into ``<staging>/<image_id>`` sparsely and set the image ``uploading``.

    ``observer`` sees the copy as the ``stage`` phase (``imgworker import --file`` draws it).
    """
    await _check_stageable(images, image_id)
    partial = partial_path(staging_dir, image_id)
    try:
        size = await asyncio.to_thread(_copy_sparse, source, partial, observer or NullObserver())
        await images.mark_staged(image_id, size, lambda: _publish(partial, image_id, "file"))
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return size


async def stage_stream(
    images: SqlImageRepository,
    staging_dir: Path,
    image_id: str,
    chunks: AsyncIterator[bytes],
    cap: int,
    admission: Admission | None = None,
) -> int:
    """Stream an upload into ``<staging>/<image_id>`` (at most ``cap`` bytes); return its size.

    Raises :class:`SafetyRefusal` (``image_size``) past the cap and
    :class:`ImageStateConflict` when the image may not be staged; ``admission`` (the
    caller's limits) decides in the transaction that makes the staged bits the image's.
    """
    await _check_stageable(images, image_id)
    with failing_at(LocalPlace(staging_dir), "take the upload"):
        await asyncio.to_thread(staging_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(remove_stale_partials, staging_dir, image_id)
    partial = partial_path(staging_dir, image_id)
    try:
        size = await _receive(chunks, partial, cap)
        await images.mark_staged(
            image_id, size, lambda: _publish(partial, image_id, "upload"), admission
        )
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(partial.unlink, missing_ok=True)
    return size


def _publish(partial: Path, image_id: str, what: str) -> None:
    """Move the complete ``partial`` into place as ``<staging>/<image_id>``."""
    with failing_at(LocalPlace(partial.parent), f"take the {what}"):
        os.replace(partial, partial.parent / image_id)


async def _receive(chunks: AsyncIterator[bytes], partial: Path, cap: int) -> int:
    total = 0
    buffer = bytearray()
    try:
        async with aiofiles.open(partial, "wb") as out:
            async for chunk in chunks:
                total += len(chunk)
                if total > cap:
                    raise SafetyRefusal(
                        "image_size",
                        f"The upload is larger than the image size cap of {cap} bytes.",
                    )
                buffer += chunk
                if len(buffer) >= WRITE_SIZE:
                    await _write_sparse(out, buffer)
                    buffer.clear()
            await _write_sparse(out, buffer)
            await out.truncate(total)  # a trailing hole has no bytes to write
            await out.flush()
            await asyncio.to_thread(os.fsync, out.fileno())
    except OSError as exc:
        raise local_failure(LocalPlace(partial.parent), "take the upload", exc) from exc
    return total


async def _write_sparse(
    out: aiofiles.threadpool.binary.AsyncBufferedIOBase, data: bytearray
) -> None:
    """Write ``data``, seeking over all-zero blocks so they stay holes."""
    for segment in split_zero_runs(0, memoryview(data)):
        if segment.data is None:
            await out.seek(segment.length, os.SEEK_CUR)
        else:
            await out.write(segment.data)


async def _check_stageable(images: SqlImageRepository, image_id: str) -> None:
    """Fail fast, before any bytes move (the final check is in ``mark_staged``)."""
    image = await images.get(image_id)
    if image.status not in STAGEABLE:
        raise ImageStateConflict(
            f"Image {image_id} is {image.status}; data can be staged only while it is "
            + " or ".join(STAGEABLE)
        )


def remove_image_staging(staging_dir: Path, image_id: str) -> None:
    """Remove everything staged for ``image_id``: its bits, conversions, partial uploads."""
    if not staging_dir.is_dir():
        return
    for pattern in (f"{image_id}*", f".{image_id}.*"):
        for path in staging_dir.glob(pattern):
            path.unlink(missing_ok=True)


def remove_stale_partials(staging_dir: Path, image_id: str) -> None:
    """Remove partial uploads of ``image_id`` that nobody has written to for a while."""
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    for partial in staging_dir.glob(f".{image_id}.stage-*.partial"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink(missing_ok=True)
        except OSError:
            continue


def _copy_sparse(source: Path, dest: Path, observer: FlowObserver) -> int:
    """Copy the local file ``source`` into ``dest`` (in the staging area), holes as holes.

    The file's own failures are a :class:`SourceError`; the staging area's (full, read-only,
    not writable) a :class:`StagingError` that names it.
    """
    if not source.is_file():
        raise SourceError(f"{source}: no such file to stage")
    try:
        reader = SparseFileReader(source)
    except OSError as exc:
        raise _unreadable(source, exc) from exc
    with reader, failing_at(LocalPlace(dest.parent), "take the file"):
        observer.phase_started(StageStep.name, reader.size)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            write_sparse(
                ReadFailures(reader, lambda exc: _unreadable(source, exc)),
                fd,
                progress=lambda written, skipped: observer.phase_advanced(
                    StageStep.name, written + skipped
                ),
            )
            os.fsync(fd)
        finally:
            os.close(fd)
        return reader.size


def _unreadable(source: Path, error: OSError) -> SourceError:
    return SourceError(f"cannot read {source}: {error.strerror or error}")
