"""Stores written in turn (``max_parallel_stores`` = 1): one write at a time, each starting as
soon as the one before ended while the records wait for the hashes, and nothing left behind
when the flow fails or is cancelled with writes done ahead of their records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.context import ImportContext
from flows.engine import Flow, FlowFailed, Step
from flows.errors import StoreFailed
from flows.records import Hold
from flows.sparse import ImageReader
from flows.steps.complete import CompleteStep
from flows.steps.lock import LockStep
from flows.steps.store import Activation, stores_in_turn
from flows.stores.base import ProgressCallback, Store, StoredImage
from flows.stores.file import FileStore, FileStoreConfig
from tests.support.fakes import MemoryImages
from tests.support.flows import Journal, PreparedData, file_store, make_context
from tests.support.images import MiB, make_sparse_raw

STORES = ("central", "dcn0", "dcn1")


class LoggedStore(FileStore):
    """A file store that writes down when each of its writes starts and ends (or fails)."""

    def __init__(
        self, name: str, config: FileStoreConfig, log: list[str], *, fail: bool = False
    ) -> None:
        super().__init__(name, config)
        self.log = log
        self.fail = fail

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        self.log.append(f"start {self.name}")
        await asyncio.sleep(0.01)  # a write that takes a while: room for another to overlap
        if self.fail:
            self.log.append(f"failed {self.name}")
            raise StoreFailed(self.name, "disk on fire")
        stored = await super().add(image_id, reader, progress, task_id=task_id)
        self.log.append(f"end {self.name}")
        return stored


class Setup:
    """Three logged file stores written in turn, fed by a 24 MiB sparse file."""

    def __init__(
        self, tmp_path: Path, *, allow_failure: bool, failing: frozenset[str] = frozenset()
    ) -> None:
        self.tmp_path = tmp_path
        self.log: list[str] = []
        self.stores: dict[str, Store] = {
            name: LoggedStore(
                name, file_store(tmp_path, name).config, self.log, fail=name in failing
            )
            for name in STORES
        }
        self.ctx = make_context(tmp_path, self.stores, allow_failure=allow_failure)
        data = tmp_path / "data.raw"
        make_sparse_raw(data, 24 * MiB, [(0, 2 * MiB), (12 * MiB, 3 * MiB)])
        self.data = data
        self.hashes = PreparedData(data, hashes_held=True)
        activation = Activation.FIRST_SUCCESS if allow_failure else Activation.ALL_WRITTEN
        steps: list[Step[ImportContext]] = [LockStep(list(STORES)), self.hashes]
        steps += stores_in_turn(list(STORES), activation)
        steps.append(CompleteStep())
        self.flow = Flow("t", steps)
        self.images: MemoryImages = self.ctx.images  # type: ignore[assignment]
        self.journal = Journal(self.images, "img")

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.flow.run(self.ctx, self.journal))

    async def until_logged(self, entry: str) -> None:
        async with asyncio.timeout(10):
            while entry not in self.log:
                await asyncio.sleep(0.005)

    def leftovers(self) -> list[str]:
        """Every file (published or hidden) left in any store."""
        return sorted(
            str(path.relative_to(self.tmp_path))
            for name in STORES
            if (self.tmp_path / name).is_dir()
            for path in (self.tmp_path / name).iterdir()
        )


async def test_writes_run_one_at_a_time_while_the_first_record_waits_for_the_hashes(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, allow_failure=True)
    flow = setup.start()
    await setup.until_logged("end dcn1")
    # Every store written, none recorded: the image may not be active before its hashes.
    image = setup.images.images["img"]
    assert (image.status, image.properties["os_glance_importing_to_stores"]) == (
        "importing",
        "central,dcn0,dcn1",
    )
    assert image.locations == ()
    setup.hashes.release.set()
    await flow
    assert setup.log == [
        "start central",
        "end central",
        "start dcn0",
        "end dcn0",
        "start dcn1",
        "end dcn1",
    ]
    # The records in turn, exactly as when each write waited for the record before it.
    assert setup.journal.executed()[2:5] == [
        ("store:central", "active", "dcn0,dcn1", ""),
        ("store:dcn0", "active", "dcn1", ""),
        ("store:dcn1", "active", "", ""),
    ]
    for name in STORES:
        assert (tmp_path / name / "img").read_bytes() == setup.data.read_bytes()


async def test_with_failure_allowed_a_failed_write_does_not_stop_the_next(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, allow_failure=True, failing=frozenset({"dcn0"}))
    setup.hashes.release.set()
    await setup.start()
    assert setup.log == [
        "start central",
        "end central",
        "start dcn0",
        "failed dcn0",
        "start dcn1",
        "end dcn1",
    ]
    assert setup.journal.executed()[2:5] == [
        ("store:central", "active", "dcn0,dcn1", ""),
        ("store:dcn0", "active", "dcn1", "dcn0"),
        ("store:dcn1", "active", "", "dcn0"),
    ]
    assert setup.images.images["img"].stores == ["central", "dcn1"]


async def test_every_store_required_the_writes_after_a_failed_one_never_start(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, allow_failure=False, failing=frozenset({"dcn0"}))
    setup.hashes.release.set()
    with pytest.raises(FlowFailed) as failed:
        await setup.start()
    assert failed.value.step == "store:dcn0"
    assert setup.log == ["start central", "end central", "start dcn0", "failed dcn0"]
    assert setup.leftovers() == []
    assert setup.images.images["img"].locations == ()


async def test_writes_done_ahead_of_a_record_that_fails_are_removed(tmp_path: Path) -> None:
    setup = Setup(tmp_path, allow_failure=True)

    async def record_stored(hold: Hold, url: str, store: str, **kwargs: object) -> None:
        raise RuntimeError("database gone")

    setup.images.record_stored = record_stored  # type: ignore[method-assign]
    flow = setup.start()
    await setup.until_logged("end dcn1")
    setup.hashes.release.set()
    with pytest.raises(FlowFailed) as failed:
        await flow
    assert failed.value.step == "store:central"
    assert "database gone" in str(failed.value.error)
    assert setup.leftovers() == []


async def test_cancelled_while_writing_ahead_leaves_nothing(tmp_path: Path) -> None:
    setup = Setup(tmp_path, allow_failure=True)
    flow = setup.start()
    await setup.until_logged("start dcn1")
    flow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flow
    assert setup.leftovers() == []
    image = setup.images.images["img"]
    assert image.locations == ()
    assert image.properties["os_glance_importing_to_stores"] == ""
