"""Running import flows in unit tests: in-memory records, real file stores, a journal of the
image record after every step (and every store of a parallel group) ends."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from flows.config import FlowSettings
from flows.context import ImportContext
from flows.engine import FlowFailed
from flows.errors import StoreFailed
from flows.import_flow import build_import_flow
from flows.ports import ImageEvents
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    OS_HASH_ALGO,
    DataFacts,
    ImageFormats,
    ImageRecord,
    TaskRecord,
)
from flows.request import ImportRequest
from flows.sparse import ImageReader
from flows.stores.base import ProgressCallback, Store, StoredImage
from flows.stores.file import FileStore, FileStoreConfig
from tests.support.fakes import MemoryImages, MemoryTasks
from tests.support.images import MiB, convert, make_sparse_raw

#: The virtual size of the image :func:`import_staged` imports.
STAGED_VIRTUAL = 16 * MiB

#: What a journal row keeps of the image: (status, importing, failed).
Fields = Callable[[ImageRecord], tuple[str, ...]]


def lists(image: ImageRecord) -> tuple[str, ...]:
    """Status and the two store lists, as the guide's table shows them."""
    return (
        image.status,
        image.properties.get(IMPORTING_TO_STORES, ""),
        image.properties.get(FAILED_IMPORT, ""),
    )


class Journal:
    """A step timer that writes down the image record each time a step reports its end."""

    def __init__(self, images: MemoryImages, image_id: str, fields: Fields = lists) -> None:
        self.images = images
        self.image_id = image_id
        self.fields = fields
        self.rows: list[tuple[str, ...]] = []
        #: Called with ``(step, result)`` after each row (a test looking at more than the record).
        self.hooks: list[Callable[[str, str], None]] = []

    def step_finished(self, step: str, seconds: float, result: str) -> None:
        """Record ``(step, result, *fields)``."""
        self.rows.append((step, result, *self.fields(self.images.images[self.image_id])))
        for hook in self.hooks:
            hook(step, result)

    def take(self, label: str) -> None:
        """Record the image now, under ``label``."""
        self.rows.append((label, "", *self.fields(self.images.images[self.image_id])))

    def executed(self) -> list[tuple[str, ...]]:
        """The rows of steps that ran forward (reverts left out), without the result."""
        return [(row[0], *row[2:]) for row in self.rows if row[1] in ("success", "failure", "")]


class BrokenStore(FileStore):
    """A file store whose writes always fail."""

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        raise StoreFailed(self.name, "disk on fire")


class GatedStore(FileStore):
    """A file store whose write, once the data is written, ends only when the test opens
    ``gate``: then it succeeds, or (``fail``) removes what it wrote and fails. The test
    decides the order in which stores written at once end."""

    def __init__(self, name: str, config: FileStoreConfig, *, fail: bool = False) -> None:
        super().__init__(name, config)
        self.gate = asyncio.Event()
        self.fail = fail

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        stored = await super().add(image_id, reader, progress, task_id=task_id)
        # Cancelled here, the data stays where no location names it: like a write cancelled
        # mid-way, the step's revert must discard it.
        await self.gate.wait()
        if self.fail:
            await self.delete(stored.url)
            raise StoreFailed(self.name, "site went dark")
        return stored


def file_store(tmp_path: Path, name: str, kind: type[FileStore] = FileStore) -> FileStore:
    """A file store ``name`` under ``tmp_path/name``."""
    return kind(name, FileStoreConfig(type="file", path=str(tmp_path / name)))


def queued_image(images: MemoryImages, tasks: MemoryTasks, disk_format: str = "raw") -> None:
    """Image ``img`` (queued, locked by task ``task``) and its pending task."""
    images.tasks = tasks
    images.put(
        ImageRecord(
            id="img",
            name="x",
            status="queued",
            disk_format=disk_format,
            container_format="bare",
            properties={IMPORT_LOCK: "task"},
        )
    )
    tasks.put(TaskRecord(id="task", type="api_image_import", status="pending", image_id="img"))


def make_context(
    tmp_path: Path,
    stores: dict[str, Store],
    *,
    allow_failure: bool,
    images: MemoryImages | None = None,
    tasks: MemoryTasks | None = None,
    method: str = "web-download",
    **settings: object,
) -> ImportContext:
    """An import context for image ``img`` and task ``task`` writing to ``stores`` in order."""
    if images is None or tasks is None:
        images, tasks = MemoryImages(), MemoryTasks()
        queued_image(images, tasks)
    request = ImportRequest(
        method=method,
        uri="http://x/y" if method == "web-download" else None,
        stores=tuple(stores),
        all_stores_must_succeed=not allow_failure,
    )
    return ImportContext(
        task_id="task",
        image_id="img",
        worker_id="w",
        request=request,
        images=images,
        tasks=tasks,
        stores=stores,
        default_store=next(iter(stores)),
        settings=FlowSettings(staging_dir=tmp_path / "staging", **settings),  # type: ignore[arg-type]
    )


class PreparedData:
    """Stands in for stage/inspect/convert: the data file is ready and its hashes known, at
    once or (``hashes_held``) when the test sets :attr:`release`."""

    name = "prepared"

    def __init__(self, path: Path, *, hashes_held: bool = False) -> None:
        self.path = path
        self.release = asyncio.Event()
        if not hashes_held:
            self.release.set()

    async def execute(self, ctx: ImportContext) -> None:
        ctx.data_path = self.path
        size = self.path.stat().st_size
        facts = DataFacts(
            size=size,
            virtual_size=size,
            checksum="0" * 32,
            os_hash_value="1" * 128,
            os_hash_algo=OS_HASH_ALGO,
        )

        async def hashed() -> DataFacts:
            await self.release.wait()
            return facts

        ctx.data_facts = asyncio.get_running_loop().create_task(hashed())

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        if ctx.data_facts is not None:
            ctx.data_facts.cancel()


async def import_staged(
    tmp_path: Path,
    journal_fields: Fields,
    *,
    disk_format: str,
    container_format: str = "bare",
    bits: str | None = None,
    kinds: dict[str, type[FileStore]] | None = None,
    allow_failure: bool = True,
    status: str = "uploading",
    requested: ImageFormats | None = None,
    observe: Callable[[str, ImportContext], object] | None = None,
    events: Callable[[MemoryImages], ImageEvents] | None = None,
) -> tuple[ImportContext, Journal, BaseException | None]:
    """Run the whole import flow (glance-direct) of a 16 MiB image into file stores.

    The image says ``disk_format``/``container_format``; the staged bits are in format
    ``bits`` (default: ``disk_format``). ``kinds`` maps each target store, in order, to its
    class (default: central and dcn0, plain file stores). ``observe(step, ctx)`` is called
    each time a step reports its end; ``events`` builds what records the announcements.
    """
    raw = tmp_path / "source.raw"
    make_sparse_raw(raw, STAGED_VIRTUAL, [(0, MiB), (8 * MiB, MiB)])
    bits = bits or disk_format
    source = raw if bits == "raw" else convert(raw, tmp_path / f"s.{bits}", "raw", bits)
    (tmp_path / "staging").mkdir()
    shutil.copy(source, tmp_path / "staging" / "img")
    images, tasks = MemoryImages(), MemoryTasks()
    queued_image(images, tasks, disk_format)
    await images.set_formats("img", disk_format, container_format)
    await images.set_status("img", status)
    kinds = kinds or {"central": FileStore, "dcn0": FileStore}
    stores: dict[str, Store] = {
        name: file_store(tmp_path, name, kind) for name, kind in kinds.items()
    }
    ctx = make_context(
        tmp_path,
        stores,
        allow_failure=allow_failure,
        images=images,
        tasks=tasks,
        method="glance-direct",
    )
    ctx.requested_formats = requested or ImageFormats(disk_format, container_format)
    if events is not None:
        ctx.events = events(images)
    journal = Journal(images, "img", journal_fields)
    if observe is not None:
        journal.hooks.append(lambda step, _result: observe(step, ctx))
    journal.take("start")
    error: BaseException | None = None
    try:
        await build_import_flow(ctx, list(stores)).run(ctx, journal)
    except FlowFailed as failed:
        error = failed
    journal.take("end")
    return ctx, journal, error
