"""After conversion the record says what the stores hold; a revert puts the originals back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.engine import FlowFailed
from flows.records import ImageFormats, ImageRecord
from flows.stores.file import FileStore
from tests.support.fakes import MemoryImages
from tests.support.flows import STAGED_VIRTUAL as VIRTUAL
from tests.support.flows import BrokenStore, Journal, import_staged
from tests.support.services import require_program


@pytest.fixture(autouse=True)
def _qemu() -> None:
    require_program("qemu-img", "qemu-utils")


def formats(image: ImageRecord) -> tuple[str, ...]:
    return (image.status, str(image.disk_format), str(image.container_format), str(image.size))


async def run(
    tmp_path: Path,
    *,
    disk_format: str,
    broken: frozenset[str] = frozenset(),
    **options: Any,
) -> tuple[Journal, MemoryImages, BaseException | None]:
    """Import into central and dcn0 (``broken`` ones fail), journaling the formats."""
    kinds = {name: BrokenStore if name in broken else FileStore for name in ("central", "dcn0")}
    ctx, journal, error = await import_staged(
        tmp_path, formats, disk_format=disk_format, kinds=kinds, **options
    )
    return journal, ctx.images, error  # type: ignore[return-value]


async def test_qcow2_becomes_raw_bare_after_convert_with_the_converted_size(
    tmp_path: Path,
) -> None:
    journal, images, error = await run(tmp_path, disk_format="qcow2")
    assert error is None
    rows = [row for row in journal.executed() if row[0] != "complete"]
    assert rows == [
        ("start", "uploading", "qcow2", "bare", "None"),
        ("lock", "importing", "qcow2", "bare", "None"),
        ("stage", "importing", "qcow2", "bare", "None"),
        ("verify_signature", "importing", "qcow2", "bare", "None"),
        ("decompress", "importing", "qcow2", "bare", "None"),
        ("inspect", "importing", "qcow2", "bare", "None"),
        ("inject_metadata", "importing", "qcow2", "bare", "None"),
        ("convert", "importing", "raw", "bare", "None"),
        ("store:central", "active", "raw", "bare", str(VIRTUAL)),
        ("store:dcn0", "active", "raw", "bare", str(VIRTUAL)),
        ("end", "active", "raw", "bare", str(VIRTUAL)),
    ]
    assert images.images["img"].size == (tmp_path / "central" / "img").stat().st_size


async def test_a_revert_restores_the_original_formats(tmp_path: Path) -> None:
    journal, images, error = await run(
        tmp_path,
        disk_format="qcow2",
        container_format="ovf",
        broken=frozenset({"dcn0"}),
        allow_failure=False,
    )
    assert isinstance(error, FlowFailed) and error.step == "store:dcn0"
    assert ("convert", "success", "importing", "raw", "bare", "None") in journal.rows
    assert ("convert", "reverted", "importing", "qcow2", "ovf", "None") in journal.rows
    image = images.images["img"]
    assert (image.disk_format, image.container_format) == ("qcow2", "ovf")
    assert image.locations == ()


async def test_nothing_is_recorded_when_nothing_is_converted(tmp_path: Path) -> None:
    journal, images, error = await run(tmp_path, disk_format="raw", container_format="ovf")
    assert error is None
    assert {row[3:5] for row in journal.rows} == {("raw", "ovf")}
    assert images.images["img"].status == "active"


async def test_a_resumed_task_restores_what_a_dead_attempt_recorded(tmp_path: Path) -> None:
    """A worker died after converting: the image says raw/bare, the staged bits are qcow2."""
    journal, images, error = await run(
        tmp_path,
        disk_format="raw",
        bits="qcow2",
        status="importing",
        requested=ImageFormats("qcow2", "bare"),
    )
    assert error is None
    executed = {row[0]: row[1:] for row in journal.executed()}
    assert executed["lock"] == ("importing", "qcow2", "bare", "None")
    assert executed["inspect"] == ("importing", "qcow2", "bare", "None")
    assert executed["convert"] == ("importing", "raw", "bare", "None")
    assert images.images["img"].status == "active"
