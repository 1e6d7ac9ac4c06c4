"""qemu-img converts straight into the first file store's hidden file, which that store's
step publishes; the hashes and the other stores come from those bytes; nothing is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.context import ImportContext
from flows.engine import FlowFailed
from flows.errors import StoreFailed
from flows.records import ImageRecord
from flows.stores.base import StoredImage
from flows.stores.file import FileStore
from tests.support.flows import BrokenStore, Journal, import_staged, lists
from tests.support.images import convert, sha512_of
from tests.support.services import require_program


@pytest.fixture(autouse=True)
def _qemu() -> None:
    require_program("qemu-img", "qemu-utils")


class NoPublish(FileStore):
    """A file store that cannot make a converted file durable (its disk fails at fsync)."""

    async def publish(self, image_id: str, partial: Path) -> StoredImage:
        raise StoreFailed(self.name, "fsync: Input/output error")


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def expected_raw(tmp_path: Path) -> bytes:
    return convert(tmp_path / "s.qcow2", tmp_path / "expected.raw", "qcow2", "raw").read_bytes()


async def test_the_conversion_is_written_once_into_the_first_store(tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    ctx, _journal, error = await _import(tmp_path, seen)
    assert error is None
    converted = seen["convert"]
    assert isinstance(converted, tuple)
    data_path, staging = converted
    assert data_path.parent == tmp_path / "central"
    assert data_path.name.startswith(".img.") and data_path.name.endswith(".partial")
    assert not any(name.endswith(".raw") for name in staging)
    central = (tmp_path / "central" / "img").read_bytes()
    assert central == expected_raw(tmp_path) == (tmp_path / "dcn0" / "img").read_bytes()
    image: ImageRecord = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert image.os_hash_value == sha512_of(tmp_path / "central" / "img")
    assert files(tmp_path / "central") == files(tmp_path / "dcn0") == ["img"]
    assert files(tmp_path / "staging") == []


async def test_a_first_store_that_cannot_take_it_gets_the_usual_write(tmp_path: Path) -> None:
    (tmp_path / "central").write_text("not a directory")  # the store cannot even be created
    ctx, _journal, error = await _import(tmp_path, {})
    assert error is None
    image: ImageRecord = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert (image.status, image.stores, lists(image)[2]) == ("active", ["dcn0"], "central")
    assert (tmp_path / "dcn0" / "img").read_bytes() == expected_raw(tmp_path)
    assert files(tmp_path / "staging") == []


async def test_a_first_store_that_cannot_publish_still_feeds_the_others(tmp_path: Path) -> None:
    ctx, _journal, error = await _import(tmp_path, {}, central=NoPublish)
    assert error is None
    image: ImageRecord = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert (image.status, image.stores, lists(image)[2]) == ("active", ["dcn0"], "central")
    assert (tmp_path / "dcn0" / "img").read_bytes() == expected_raw(tmp_path)
    assert files(tmp_path / "central") == []  # its unpublished file is gone


async def test_a_revert_removes_the_converted_file(tmp_path: Path) -> None:
    _ctx, _journal, error = await _import(
        tmp_path, {}, central=NoPublish, dcn0=BrokenStore, allow_failure=False
    )
    assert isinstance(error, FlowFailed) and error.step == "store:central"
    assert files(tmp_path / "central") == [] and files(tmp_path / "dcn0") == []
    assert files(tmp_path / "staging") == ["img"]  # the upload stays for the runner to decide


async def _import(
    tmp_path: Path,
    seen: dict[str, object],
    central: type[FileStore] = FileStore,
    dcn0: type[FileStore] = FileStore,
    allow_failure: bool = True,
) -> tuple[ImportContext, Journal, BaseException | None]:
    """Import the qcow2 into central and dcn0; ``seen[step]`` = (data_path, staging files)."""
    return await import_staged(
        tmp_path,
        lists,
        disk_format="qcow2",
        kinds={"central": central, "dcn0": dcn0},
        allow_failure=allow_failure,
        observe=lambda step, ctx: seen.setdefault(
            step, (ctx.data_path, files(tmp_path / "staging"))
        ),
    )
