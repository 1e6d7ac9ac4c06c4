"""Multi-store semantics of the store steps, with in-memory records and real file stores."""

from __future__ import annotations

from pathlib import Path

from flows.context import ImportContext
from flows.engine import Flow, FlowFailed, Step
from flows.steps.complete import CompleteStep
from flows.steps.lock import LockStep
from flows.steps.store import Activation, stores_in_turn
from flows.stores.base import Store
from flows.stores.file import FileStore
from tests.support.flows import BrokenStore, Journal, PreparedData, file_store, make_context
from tests.support.images import MiB, make_sparse_raw

STORES = ("central", "dcn0", "dcn1")


async def run_import(
    tmp_path: Path, *, allow_failure: bool, broken: frozenset[str]
) -> tuple[ImportContext, Journal, BaseException | None]:
    stores: dict[str, Store] = {
        name: file_store(tmp_path, name, BrokenStore if name in broken else FileStore)
        for name in STORES
    }
    ctx = make_context(tmp_path, stores, allow_failure=allow_failure)
    data = tmp_path / "data.raw"
    make_sparse_raw(data, 16 * MiB, [(0, MiB), (8 * MiB, MiB)])
    activation = Activation.FIRST_SUCCESS if allow_failure else Activation.ALL_WRITTEN
    steps: list[Step[ImportContext]] = [LockStep(list(STORES)), PreparedData(data)]
    steps += stores_in_turn(list(STORES), activation)
    steps.append(CompleteStep())
    journal = Journal(ctx.images, "img")  # type: ignore[arg-type]
    error: BaseException | None = None
    try:
        await Flow("t", steps).run(ctx, journal)
    except FlowFailed as failed:
        error = failed
    journal.take("end")
    return ctx, journal, error


async def test_allow_failure_second_store_fails(tmp_path: Path) -> None:
    ctx, journal, error = await run_import(tmp_path, allow_failure=True, broken=frozenset({"dcn0"}))
    assert error is None
    assert journal.executed() == [
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
    ctx, journal, error = await run_import(
        tmp_path, allow_failure=False, broken=frozenset({"dcn0"})
    )
    assert isinstance(error, FlowFailed) and error.step == "store:dcn0"
    assert journal.executed() == [
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
    _ctx, journal, error = await run_import(tmp_path, allow_failure=False, broken=frozenset())
    assert error is None
    statuses = [(row[0], row[1]) for row in journal.executed()]
    assert statuses[2:5] == [
        ("store:central", "importing"),
        ("store:dcn0", "importing"),
        ("store:dcn1", "active"),
    ]
    for name in STORES:
        assert (tmp_path / name / "img").read_bytes() == (tmp_path / "data.raw").read_bytes()


async def test_no_store_succeeds_with_allow_failure(tmp_path: Path) -> None:
    _ctx, journal, error = await run_import(tmp_path, allow_failure=True, broken=frozenset(STORES))
    assert isinstance(error, FlowFailed) and error.step == "complete"
    assert "none of the stores could be written" in str(error.error)
    assert "disk on fire" in str(error.error)
    assert journal.executed()[-1] == ("end", "importing", "", "central,dcn0,dcn1")
