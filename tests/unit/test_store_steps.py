"""Multi-store semantics of the store steps, with in-memory records and real file stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flows.config import FlowSettings
from flows.context import ImportContext
from flows.engine import Flow, FlowFailed, Step
from flows.errors import StoreWriteFailed
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    OS_HASH_ALGO,
    DataFacts,
    ImageRecord,
    TaskRecord,
)
from flows.request import ImportRequest
from flows.sparse import ImageReader
from flows.steps.complete import CompleteStep
from flows.steps.lock import LockStep
from flows.steps.store import StoreStep
from flows.stores.base import ProgressCallback, Store, StoredImage
from flows.stores.file import FileStore, FileStoreConfig
from tests.support.fakes import MemoryImages, MemoryTasks
from tests.support.images import MiB, make_sparse_raw

STORES = ("central", "dcn0", "dcn1")


class BrokenStore(FileStore):
    """A file store whose writes always fail."""

    async def add(
        self, image_id: str, reader: ImageReader, progress: ProgressCallback | None = None
    ) -> StoredImage:
        raise StoreWriteFailed(self.name, "disk on fire")


class Snapshot:
    """Records (status, importing, failed) after each step."""

    def __init__(self, images: MemoryImages, image_id: str) -> None:
        self.images = images
        self.image_id = image_id
        self.rows: list[tuple[str, str, str, str]] = []

    def take(self, step: str) -> None:
        image = self.images.images[self.image_id]
        self.rows.append(
            (
                step,
                image.status,
                image.properties.get(IMPORTING_TO_STORES, ""),
                image.properties.get(FAILED_IMPORT, ""),
            )
        )


class Observed:
    """Wraps a step to snapshot the image after it executes (also when it raises)."""

    def __init__(self, inner: Step[ImportContext], snapshot: Snapshot) -> None:
        self.inner = inner
        self.name = inner.name
        self.snapshot = snapshot

    async def execute(self, ctx: ImportContext) -> None:
        try:
            await self.inner.execute(ctx)
        finally:
            self.snapshot.take(self.name)

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        await self.inner.revert(ctx, error)


class PreparedData:
    """Stands in for stage/inspect/convert: the data file is ready and hashed."""

    name = "prepared"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def execute(self, ctx: ImportContext) -> None:
        ctx.data_path = self.path
        facts = DataFacts(
            size=self.path.stat().st_size,
            virtual_size=self.path.stat().st_size,
            checksum="0" * 32,
            os_hash_value="1" * 128,
            os_hash_algo=OS_HASH_ALGO,
        )
        ctx.data_facts = asyncio.get_running_loop().create_task(asyncio.sleep(0, facts))

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        return None


async def run_import(
    tmp_path: Path, *, allow_failure: bool, broken: frozenset[str]
) -> tuple[ImportContext, Snapshot, BaseException | None]:
    images, tasks = MemoryImages(), MemoryTasks()
    images.put(
        ImageRecord(
            id="img",
            name="x",
            status="queued",
            disk_format="raw",
            container_format="bare",
            properties={IMPORT_LOCK: "task"},
        )
    )
    tasks.put(TaskRecord(id="task", type="api_image_import", status="pending", image_id="img"))
    stores: dict[str, Store] = {
        name: (BrokenStore if name in broken else FileStore)(
            name, FileStoreConfig(type="file", path=str(tmp_path / name))
        )
        for name in STORES
    }
    data = tmp_path / "data.raw"
    make_sparse_raw(data, 16 * MiB, [(0, MiB), (8 * MiB, MiB)])
    request = ImportRequest(
        method="web-download",
        uri="http://x/y",
        stores=STORES,
        all_stores_must_succeed=not allow_failure,
    )
    ctx = ImportContext(
        task_id="task",
        image_id="img",
        worker_id="w",
        request=request,
        images=images,
        tasks=tasks,
        stores=stores,
        default_store="central",
        settings=FlowSettings(staging_dir=tmp_path / "staging"),
    )
    snapshot = Snapshot(images, "img")
    steps: list[Step[ImportContext]] = [LockStep(list(STORES)), PreparedData(data)]
    for index, name in enumerate(STORES):
        steps.append(StoreStep(name, set_active=allow_failure or index == len(STORES) - 1))
    steps.append(CompleteStep())

    class NoTimer:
        def step_finished(self, step: str, seconds: float, result: str) -> None:
            return None

    error: BaseException | None = None
    try:
        await Flow("t", [Observed(s, snapshot) for s in steps]).run(ctx, NoTimer())
    except FlowFailed as failed:
        error = failed
    snapshot.take("end")
    return ctx, snapshot, error


async def test_allow_failure_second_store_fails(tmp_path: Path) -> None:
    ctx, snapshot, error = await run_import(
        tmp_path, allow_failure=True, broken=frozenset({"dcn0"})
    )
    assert error is None
    assert snapshot.rows == [
        ("lock", "importing", "central,dcn0,dcn1", ""),
        ("prepared", "importing", "central,dcn0,dcn1", ""),
        ("store:central", "active", "dcn0,dcn1", ""),
        ("store:dcn0", "active", "dcn1", "dcn0"),
        ("store:dcn1", "active", "", "dcn0"),
        ("complete", "active", "", "dcn0"),
        ("end", "active", "", "dcn0"),
    ]
    image = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert image.stores == ["central", "dcn1"]
    assert image.os_hash_value == "1" * 128


async def test_every_store_must_succeed_second_store_fails(tmp_path: Path) -> None:
    ctx, snapshot, error = await run_import(
        tmp_path, allow_failure=False, broken=frozenset({"dcn0"})
    )
    assert isinstance(error, FlowFailed) and error.step == "store:dcn0"
    assert snapshot.rows == [
        ("lock", "importing", "central,dcn0,dcn1", ""),
        ("prepared", "importing", "central,dcn0,dcn1", ""),
        ("store:central", "importing", "dcn0,dcn1", ""),
        ("store:dcn0", "importing", "dcn1", "dcn0"),
        ("end", "importing", "", "dcn0"),
    ]
    image = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert image.locations == ()
    assert not (tmp_path / "central" / "img").exists()


async def test_all_healthy_must_succeed_activates_only_at_the_last_store(tmp_path: Path) -> None:
    _ctx, snapshot, error = await run_import(tmp_path, allow_failure=False, broken=frozenset())
    assert error is None
    statuses = [(row[0], row[1]) for row in snapshot.rows]
    assert statuses[2:5] == [
        ("store:central", "importing"),
        ("store:dcn0", "importing"),
        ("store:dcn1", "active"),
    ]
    for name in STORES:
        assert (tmp_path / name / "img").read_bytes() == (tmp_path / "data.raw").read_bytes()


async def test_no_store_succeeds_with_allow_failure(tmp_path: Path) -> None:
    _ctx, snapshot, error = await run_import(tmp_path, allow_failure=True, broken=frozenset(STORES))
    assert isinstance(error, FlowFailed) and error.step == "complete"
    assert "none of the stores could be written" in str(error.error)
    assert "disk on fire" in str(error.error)
    assert snapshot.rows[-1] == ("end", "importing", "", "central,dcn0,dcn1")
