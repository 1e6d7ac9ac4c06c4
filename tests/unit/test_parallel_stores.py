"""Stores written at once (``max_parallel_stores`` = 3): the guide's record after every store
event, one read of the data, and nothing left behind by a failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.context import ImportContext
from flows.engine import Flow, FlowFailed, Parallel, Step
from flows.import_flow import build_import_flow
from flows.sparse import SparseFileReader
from flows.steps import store as store_module
from flows.steps.complete import CompleteStep
from flows.steps.lock import LockStep
from flows.steps.store import Activation, StoreStep, store_group
from flows.stores.base import Store
from flows.stores.file import FileStore
from tests.support.flows import (
    BrokenStore,
    GatedStore,
    Journal,
    PreparedData,
    file_store,
    make_context,
)
from tests.support.images import MiB, make_sparse_raw

STORES = ("central", "dcn0", "dcn1")


def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.raw"
    make_sparse_raw(path, 40 * MiB, [(0, 3 * MiB), (9 * MiB, 5 * MiB), (30 * MiB, 2 * MiB)])
    return path


def parallel_flow(ctx: ImportContext, data: Path) -> Flow[ImportContext]:
    activation = Activation.FIRST_SUCCESS if ctx.request.allow_failure else Activation.ALL_WRITTEN
    members = [StoreStep(name, activation=activation) for name in STORES]
    steps: list[Step[ImportContext] | Parallel[ImportContext]] = [
        LockStep(list(STORES)),
        PreparedData(data),
        store_group(members),
        CompleteStep(),
    ]
    return Flow("t", steps)


async def run_gated(
    tmp_path: Path, *, allow_failure: bool, failing: str, order: list[str]
) -> tuple[ImportContext, Journal, BaseException | None]:
    """Three gated stores written at once; their writes end in ``order``."""
    stores: dict[str, GatedStore] = {
        name: GatedStore(name, file_store(tmp_path, name).config, fail=name == failing)
        for name in STORES
    }
    ctx = make_context(tmp_path, dict(stores), allow_failure=allow_failure, chunk_size=MiB)
    journal = Journal(ctx.images, "img")  # type: ignore[arg-type]
    data = data_file(tmp_path)
    run = asyncio.create_task(parallel_flow(ctx, data).run(ctx, journal))
    for name in order:
        stores[name].gate.set()
        while not any(row[0] == f"store:{name}" for row in journal.rows) and not run.done():
            await asyncio.sleep(0.01)
    error: BaseException | None = None
    try:
        await run
    except FlowFailed as failed:
        error = failed
    journal.take("end")
    return ctx, journal, error


def store_files(tmp_path: Path) -> list[str]:
    return sorted(
        str(path.relative_to(tmp_path))
        for name in STORES
        if (tmp_path / name).exists()
        for path in (tmp_path / name).iterdir()
    )


async def test_allow_failure_one_fails_one_slow(tmp_path: Path) -> None:
    ctx, journal, error = await run_gated(
        tmp_path, allow_failure=True, failing="dcn0", order=["dcn0", "central", "dcn1"]
    )
    assert error is None
    assert journal.executed() == [
        ("lock", "importing", "central,dcn0,dcn1", ""),
        ("prepared", "importing", "central,dcn0,dcn1", ""),
        ("store:dcn0", "importing", "central,dcn1", "dcn0"),
        ("store:central", "active", "dcn1", "dcn0"),
        ("store:dcn1", "active", "", "dcn0"),
        ("complete", "active", "", "dcn0"),
        ("end", "active", "", "dcn0"),
    ]
    image = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert image.stores == ["central", "dcn1"]
    assert image.os_hash_value == "1" * 128
    assert store_files(tmp_path) == ["central/img", "dcn1/img"]
    for name in ("central", "dcn1"):
        assert (tmp_path / name / "img").read_bytes() == (tmp_path / "data.raw").read_bytes()


async def test_must_succeed_one_failure_cancels_the_others_and_removes_everything(
    tmp_path: Path,
) -> None:
    ctx, journal, error = await run_gated(
        tmp_path, allow_failure=False, failing="dcn0", order=["central", "dcn0"]
    )
    assert isinstance(error, FlowFailed) and error.step == "store:dcn0"
    assert "site went dark" in str(error)
    assert [row for row in journal.rows if row[0].startswith("store:")] == [
        ("store:central", "success", "importing", "dcn0,dcn1", ""),
        ("store:dcn0", "failure", "importing", "dcn1", "dcn0"),
        ("store:dcn1", "failure", "importing", "dcn1", "dcn0"),
        ("store:dcn1", "reverted", "importing", "", "dcn0"),
        ("store:dcn0", "reverted", "importing", "", "dcn0"),
        ("store:central", "reverted", "importing", "", "dcn0"),
    ]
    assert journal.rows[-1] == ("end", "", "importing", "", "dcn0")
    assert ctx.images.images["img"].locations == ()  # type: ignore[attr-defined]
    assert store_files(tmp_path) == []


async def test_must_succeed_all_healthy_is_active_only_after_all(tmp_path: Path) -> None:
    _ctx, journal, error = await run_gated(
        tmp_path, allow_failure=False, failing="", order=["dcn1", "central", "dcn0"]
    )
    assert error is None
    assert [row for row in journal.executed() if row[0].startswith("store:")] == [
        ("store:dcn1", "importing", "central,dcn0", ""),
        ("store:central", "importing", "dcn0", ""),
        ("store:dcn0", "active", "", ""),
    ]
    assert store_files(tmp_path) == ["central/img", "dcn0/img", "dcn1/img"]


@pytest.mark.parametrize("allow_failure", [True, False], ids=["allow-failure", "must-succeed"])
async def test_one_read_feeds_every_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_failure: bool
) -> None:
    """A store that fails before reading is dropped; the others get every byte, read once."""
    opened: list[str] = []

    class Counting(SparseFileReader):
        def __init__(self, path: object, **kwargs: object) -> None:
            opened.append(str(path))
            super().__init__(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "SparseFileReader", Counting)
    broken = "dcn1" if allow_failure else ""
    stores: dict[str, Store] = {
        name: file_store(tmp_path, name, BrokenStore if name == broken else FileStore)
        for name in STORES
    }
    ctx = make_context(tmp_path, stores, allow_failure=allow_failure, chunk_size=MiB)
    journal = Journal(ctx.images, "img")  # type: ignore[arg-type]
    data = data_file(tmp_path)
    await parallel_flow(ctx, data).run(ctx, journal)
    assert opened == [str(data)]
    written = [name for name in STORES if name != broken]
    for name in written:
        assert (tmp_path / name / "img").read_bytes() == data.read_bytes()
    image = ctx.images.images["img"]  # type: ignore[attr-defined]
    assert image.status == "active" and sorted(image.stores) == sorted(written)


def test_groups_of_max_parallel_stores(tmp_path: Path) -> None:
    stores: dict[str, Store] = {
        name: file_store(tmp_path, name) for name in (*STORES, "dcn2", "dcn3")
    }
    ctx = make_context(tmp_path, stores, allow_failure=True, max_parallel_stores=2)
    flow = build_import_flow(ctx, list(stores))
    shape = [
        [member.name for member in step.steps] if isinstance(step, Parallel) else step.name
        for step in flow.steps
        if isinstance(step, Parallel) or step.name.startswith("store:")
    ]
    assert shape == [["store:central", "store:dcn0"], ["store:dcn1", "store:dcn2"], "store:dcn3"]
    serial = build_import_flow(make_context(tmp_path, stores, allow_failure=True), list(stores))
    assert not any(isinstance(step, Parallel) for step in serial.steps)


async def test_a_resumed_task_clears_what_a_dead_parallel_attempt_left(tmp_path: Path) -> None:
    """Partial files in every store, and one finished store with its location recorded."""
    stores: dict[str, Store] = {name: file_store(tmp_path, name) for name in STORES}
    ctx = make_context(tmp_path, stores, allow_failure=True)
    for name in STORES:
        (tmp_path / name).mkdir()
        (tmp_path / name / f".img.{name}0123.partial").write_bytes(b"half")
    (tmp_path / "central" / "img").write_bytes(b"whole")
    await ctx.images.add_location("img", (tmp_path / "central" / "img").as_uri(), "central")
    await LockStep(list(STORES)).execute(ctx)
    assert store_files(tmp_path) == []
    assert ctx.images.images["img"].locations == ()  # type: ignore[attr-defined]
