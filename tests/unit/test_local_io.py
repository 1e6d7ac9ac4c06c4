"""Local file-system failures become reasons: the place, the problem, what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from flows.errors import StagingError, StoreFailed, StoreUnavailable
from flows.events import UploadFailureKind, failure_kind
from flows.local_io import LocalPlace, failing_at, local_failure
from flows.sparse import Segment, write_sparse
from flows.stores.file import FileStore, FileStoreConfig

STAGING = LocalPlace(Path("/srv/staging"))
STORE = LocalPlace(Path("/srv/central"), "central")


@pytest.mark.parametrize(
    ("number", "problem", "fix"),
    [
        (errno.ENOSPC, "/srv/staging is full (", "point [staging] dir at a larger file system"),
        (errno.EDQUOT, "is over the disk quota", "raise the quota"),
        (errno.EROFS, "is on a read-only file system (", "remount it read-write"),
        (errno.EACCES, "is not accessible to the worker's user (uid", "give that user read"),
    ],
)
def test_the_staging_area_says_where_what_and_what_to_do(
    number: int, problem: str, fix: str
) -> None:
    error = local_failure(STAGING, "take the upload", OSError(number, os.strerror(number)))
    assert isinstance(error, StagingError) and not error.transient
    message = str(error)
    assert message.startswith("the staging area cannot take the upload: /srv/staging ")
    assert problem in message and fix in message
    assert os.strerror(number) in message
    assert "\n" not in message


def test_a_file_store_failure_names_the_store_its_directory_and_setting() -> None:
    error = local_failure(STORE, "write the image", OSError(errno.ENOSPC, "No space left"))
    assert isinstance(error, StoreFailed) and not error.transient
    assert error.store == "central"
    assert str(error) == (
        "store 'central': cannot write the image: /srv/central is full (No space left); "
        "free space there, or point [stores.central] path at a larger file system"
    )


def test_a_network_file_system_not_answering_is_transient() -> None:
    error = local_failure(STORE, "write the image", OSError(errno.ESTALE, "Stale file handle"))
    assert isinstance(error, StoreUnavailable) and error.transient
    assert "tried again later" in str(error)


def test_an_unlisted_error_names_the_file() -> None:
    error = local_failure(
        STORE, "read x", FileNotFoundError(errno.ENOENT, "No such file", "/srv/central/x")
    )
    assert str(error) == "store 'central': cannot read x: /srv/central/x: No such file"


def test_failing_at_keeps_the_cause_for_glance_s_classification() -> None:
    with pytest.raises(StoreFailed) as caught, failing_at(STORE, "write the image"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(caught.value.__cause__, OSError)
    assert failure_kind(caught.value) == UploadFailureKind.FULL


class Chunks:
    """A reader of two data chunks."""

    size = 2 * 65536

    def segments(self, chunk_size: int = 65536) -> object:
        yield Segment(0, 65536, b"\x01" * 65536)
        yield Segment(65536, 65536, b"\x02" * 65536)

    def close(self) -> None:
        pass


def test_a_short_write_is_finished_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk filling up writes part of a chunk and says so only by the count."""
    real = os.pwrite

    def half(fd: int, data: memoryview, offset: int) -> int:
        return real(fd, bytes(data)[: max(1, len(data) // 2)], offset)

    monkeypatch.setattr(os, "pwrite", half)
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        write_sparse(Chunks(), fd)  # type: ignore[arg-type]
    finally:
        os.close(fd)
    assert target.read_bytes() == b"\x01" * 65536 + b"\x02" * 65536


def test_a_full_disk_after_a_short_write_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []

    def fill(fd: int, data: memoryview, offset: int) -> int:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data) // 2)
        return len(data) // 2

    monkeypatch.setattr(os, "pwrite", fill)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="No space left"):
            write_sparse(Chunks(), fd)  # type: ignore[arg-type]
    finally:
        os.close(fd)


async def test_a_file_store_read_failure_is_the_store_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore("central", FileStoreConfig(type="file", path=str(tmp_path)))
    (tmp_path / "img").write_bytes(b"\x01" * 4096)
    reader = await store.open((tmp_path / "img").as_uri())

    def broken(*args: object) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "pread", broken)
    try:
        with pytest.raises(StoreFailed, match=r"cannot read img: .* input/output error") as caught:
            list(reader.segments())
    finally:
        reader.close()
    assert caught.value.store == "central"
