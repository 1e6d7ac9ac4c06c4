"""What an import announces, in order, with the image record at each moment.

The order is Glance 33's, as an oslo.messaging listener heard it (docs/notifications.md):
``image.update`` when the import starts and when the data is ready, then per store
``image.prepare``, ``image.upload`` (at error priority when the write fails),
``image.activate`` when the image goes active, and ``image.update`` once the store has left
the importing list.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from flows.errors import StoreFailed
from flows.events import UploadFailureKind, failure_kind
from flows.stores.file import FileStore
from tests.support.fakes import MemoryEvents
from tests.support.flows import BrokenStore, import_staged, lists
from tests.support.services import require_program

STORES = ("central", "dcn0", "dcn1")


@pytest.fixture(autouse=True)
def _qemu() -> None:
    require_program("qemu-img", "qemu-utils")


async def run(tmp_path: Path, *, allow_failure: bool) -> tuple[MemoryEvents, BaseException | None]:
    """Import a qcow2 (converted to raw) into central, dcn0 (failing) and dcn1."""
    kinds = {name: BrokenStore if name == "dcn0" else FileStore for name in STORES}
    recorded: list[MemoryEvents] = []

    def events(images: object) -> MemoryEvents:
        recorded.append(MemoryEvents(images))  # type: ignore[arg-type]
        return recorded[-1]

    _ctx, _journal, error = await import_staged(
        tmp_path,
        lists,
        disk_format="qcow2",
        kinds=kinds,
        allow_failure=allow_failure,
        events=events,
    )
    return recorded[0], error


async def test_allow_failure_announces_glance_s_sequence(tmp_path: Path) -> None:
    events, error = await run(tmp_path, allow_failure=True)
    assert error is None
    internal = UploadFailureKind.INTERNAL
    assert events.rows == [
        ("image.update", "start", "", "", "importing", "central,dcn0,dcn1", ""),
        ("image.update", "data", "", "", "importing", "central,dcn0,dcn1", ""),
        ("image.prepare", "store:central", "central", "", "importing", "central,dcn0,dcn1", ""),
        ("image.upload", "store:central", "", "", "active", "central,dcn0,dcn1", ""),
        ("image.activate", "activate", "", "", "active", "dcn0,dcn1", ""),
        ("image.update", "store:central", "", "", "active", "dcn0,dcn1", ""),
        ("image.prepare", "store:dcn0", "dcn0", "", "active", "dcn0,dcn1", ""),
        ("image.upload", "store:dcn0:failed", "", internal, "active", "dcn0,dcn1", ""),
        ("image.update", "store:dcn0:failed", "", "", "active", "dcn1", "dcn0"),
        ("image.prepare", "store:dcn1", "dcn1", "", "active", "dcn1", "dcn0"),
        ("image.upload", "store:dcn1", "", "", "active", "dcn1", "dcn0"),
        ("image.update", "store:dcn1", "", "", "active", "", "dcn0"),
    ]


async def test_every_store_must_succeed_announces_the_failure_and_the_reverts(
    tmp_path: Path,
) -> None:
    events, error = await run(tmp_path, allow_failure=False)
    assert error is not None
    assert [row[:2] for row in events.rows] == [
        ("image.update", "start"),
        ("image.update", "data"),
        ("image.prepare", "store:central"),
        ("image.upload", "store:central"),
        ("image.update", "store:central"),
        ("image.prepare", "store:dcn0"),
        ("image.upload", "store:dcn0:failed"),
        ("image.update", "store:dcn0:failed"),
        # central's data is deleted, then the conversion's formats are put back.
        ("image.update", "revert:store:central"),
        ("image.update", "revert:convert"),
    ]
    assert "image.activate" not in events.events()
    assert events.rows[-3][4:] == ("importing", "dcn1", "dcn0")


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        (errno.ENOSPC, UploadFailureKind.FULL),
        (errno.EFBIG, UploadFailureKind.FULL),
        (errno.EACCES, UploadFailureKind.DENIED),
        (errno.EPERM, UploadFailureKind.INTERNAL),
        (None, UploadFailureKind.INTERNAL),
    ],
)
def test_store_errors_are_worded_as_glance_s_file_store_classifies_them(
    number: int | None, kind: UploadFailureKind
) -> None:
    error = StoreFailed("dcn0", "cannot write")
    if number is not None:
        error.__cause__ = OSError(number, "boom")
    assert failure_kind(error) == kind
