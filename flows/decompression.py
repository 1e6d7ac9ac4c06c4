"""Glance's ``image_decompression`` plugin: gzip, xz and zip detected by magic and unpacked.

Decompression output is written sparsely (all-zero chunks become holes) and capped at the
policy's image size cap, so a decompression bomb stops at the cap instead of filling the
staging area.
"""

from __future__ import annotations

import gzip
import lzma
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from flows.errors import SafetyRefusal
from flows.local_io import LocalPlace, failing_at
from flows.sparse import write_skipping_zeros
from flows.threads import check_stop

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZIP_MAGIC = b"PK\x03\x04"

#: Bytes decompressed per read.
CHUNK = 4 * 1024 * 1024


def detect_compression(path: Path) -> str | None:
    """``gzip``, ``xz``, ``zip``, or None for bits that are not compressed."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    return None


def decompress(
    source: Path,
    dest: Path,
    kind: str,
    cap: int,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Decompress ``source`` (of ``kind``) into ``dest``; return the bytes produced.

    Raises :class:`SafetyRefusal` (``decompression``) for corrupt archives, zip archives that
    do not hold exactly one file, and output beyond ``cap`` bytes; ``dest`` is removed then.
    """
    try:
        with _open(source, kind) as stream:
            return _copy_sparse(stream, dest, cap, stop, progress)
    except SafetyRefusal:
        dest.unlink(missing_ok=True)
        raise
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        dest.unlink(missing_ok=True)
        raise SafetyRefusal(
            "decompression", f"the {kind} data could not be decompressed: {exc}"
        ) from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _open(source: Path, kind: str) -> IO[bytes]:
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(source, "rb"))
    if kind == "xz":
        return lzma.open(source, "rb")
    archive = zipfile.ZipFile(source)
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) != 1:
        archive.close()
        raise SafetyRefusal(
            "decompression",
            f"the zip archive holds {len(members)} files; exactly one disk image is expected",
        )
    return archive.open(members[0])


def _copy_sparse(
    stream: IO[bytes],
    dest: Path,
    cap: int,
    stop: threading.Event | None,
    progress: Callable[[int], None] | None,
) -> int:
    # Reading a corrupt archive raises OSError too: only the writes are the staging area's.
    staging = LocalPlace(dest.parent)
    with failing_at(staging, "take the decompressed image"):
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    total = 0
    try:
        while chunk := stream.read(CHUNK):
            check_stop(stop)
            total += len(chunk)
            if total > cap:
                raise SafetyRefusal(
                    "decompression",
                    f"the decompressed image exceeds the image size cap of {cap} bytes",
                )
            with failing_at(staging, "take the decompressed image"):
                write_skipping_zeros(fd, memoryview(chunk))
            if progress is not None:
                progress(len(chunk))
        with failing_at(staging, "take the decompressed image"):
            os.ftruncate(fd, total)
            os.fsync(fd)
    finally:
        os.close(fd)
    return total
