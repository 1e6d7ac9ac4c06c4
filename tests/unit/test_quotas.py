"""The unified limits' rules and their cache (no Keystone: a small fake of oslo.limit's reads)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flows.errors import OverLimit
from flows.records import ImageRecord
from flows.request import COPY_IMAGE, GLANCE_DIRECT, WEB_DOWNLOAD, ImportRequest
from worker.api.limits import KeystoneLimits, LimitsUnavailable
from worker.api.quotas import _import_charge, _stage_charge, judge_by
from worker.db.usage import Charge, Resource

MiB = 1024 * 1024
ALL = {r: 10 for r in Resource}


class FakeEnforcer:
    """oslo.limit's two reads, counted; ``fail`` makes the next ones raise."""

    def __init__(self, registered: dict[str, int], projects: dict[str, dict[str, int]]) -> None:
        self.registered, self.projects = registered, projects
        self.calls: list[str] = []
        self.fail = False

    def get_registered_limits(self, resources: Any) -> list[tuple[str, int]]:
        assert resources is None
        self._called("registered")
        return list(self.registered.items())

    def get_project_limits(self, project_id: str | None, resources: Any) -> list[tuple[str, int]]:
        assert resources is None and project_id is not None
        self._called(project_id)
        return list(self.projects.get(project_id, {}).items())

    def _called(self, what: str) -> None:
        if self.fail:
            raise ConnectionError("Keystone is down")
        self.calls.append(what)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _image(**fields: Any) -> ImageRecord:
    base: dict[str, Any] = {
        "id": "i1", "name": None, "status": "queued", "disk_format": "raw",
        "container_format": "bare", "owner": "p", "size": None, "virtual_size": None,
        "checksum": None, "os_hash_algo": None, "os_hash_value": None,
    }  # fmt: skip
    return ImageRecord(**{**base, **fields})


def test_over_a_limit_is_refused_in_glances_words() -> None:
    judge = judge_by({**ALL, Resource.IMAGE_COUNT_TOTAL: 10})
    with pytest.raises(OverLimit) as refused:
        judge(Charge("P", {Resource.IMAGE_COUNT_TOTAL: 1}), {Resource.IMAGE_COUNT_TOTAL: 10})
    assert str(refused.value) == (
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        "Project P is over a limit for [Resource image_count_total is over limit of 10 due to "
        "current usage 10 and delta 1]"
    )


def test_at_the_limit_passes_minus_one_is_unlimited_zero_allows_nothing() -> None:
    usage = {Resource.IMAGE_COUNT_TOTAL: 9, Resource.IMAGE_SIZE_TOTAL: 10**9}
    charge = Charge("P", {Resource.IMAGE_COUNT_TOTAL: 1, Resource.IMAGE_SIZE_TOTAL: 5})
    judge_by({**ALL, Resource.IMAGE_SIZE_TOTAL: -1})(charge, usage)  # 10 of 10, unlimited

    nothing = judge_by({**ALL, Resource.IMAGE_COUNT_UPLOADING: 0})
    empty = {Resource.IMAGE_COUNT_UPLOADING: 0}
    nothing(Charge("P", {Resource.IMAGE_COUNT_UPLOADING: 0}), empty)
    with pytest.raises(OverLimit, match="image_count_uploading is over limit of 0"):
        nothing(Charge("P", {Resource.IMAGE_COUNT_UPLOADING: 1}), empty)


async def test_limits_are_the_projects_else_registered_else_zero_and_kept() -> None:
    enforcer = FakeEnforcer(
        {"image_count_total": 5, "image_size_total": -1},
        {"P": {"image_count_total": 2}},
    )
    clock = Clock()
    limits = KeystoneLimits(60, lambda: enforcer, clock)

    first = await limits.limits("P")
    assert first == {
        Resource.IMAGE_COUNT_TOTAL: 2,
        Resource.IMAGE_SIZE_TOTAL: -1,
        Resource.IMAGE_STAGE_TOTAL: 0,  # no registered limit: nothing allowed, as in Glance
        Resource.IMAGE_COUNT_UPLOADING: 0,
    }
    assert (await limits.limits("Q"))[Resource.IMAGE_COUNT_TOTAL] == 5
    await asyncio.gather(*(limits.limits("P") for _ in range(20)))
    assert enforcer.calls == ["registered", "P", "Q"]

    enforcer.projects["P"] = {"image_count_total": 7}
    clock.now += 59
    assert (await limits.limits("P"))[Resource.IMAGE_COUNT_TOTAL] == 2
    clock.now += 2
    assert (await limits.limits("P"))[Resource.IMAGE_COUNT_TOTAL] == 7
    assert enforcer.calls[3:] == ["registered", "P"]


async def test_keystone_failing_is_a_503_and_the_enforcer_is_made_again() -> None:
    made: list[FakeEnforcer] = []

    def make() -> FakeEnforcer:
        made.append(FakeEnforcer({"image_count_total": 5}, {}))
        made[-1].fail = len(made) == 1
        return made[-1]

    limits = KeystoneLimits(60, make, Clock())
    with pytest.raises(LimitsUnavailable) as refused:
        await limits.limits("P")
    assert refused.value.transient
    assert (await limits.limits("P"))[Resource.IMAGE_COUNT_TOTAL] == 5
    assert len(made) == 2


def test_what_each_request_adds() -> None:
    queued = _image(size=None)
    staged = _image(status="uploading", size=3 * MiB)
    active = _image(status="active", size=3 * MiB)

    assert _stage_charge("p", queued, 2 * MiB).deltas == {
        Resource.IMAGE_STAGE_TOTAL: 2,
        Resource.IMAGE_COUNT_UPLOADING: 1,
    }
    direct = _import_charge("p", staged, ImportRequest(GLANCE_DIRECT), ["a", "b"])
    assert direct.deltas == {Resource.IMAGE_SIZE_TOTAL: 6}
    download = _import_charge("p", queued, ImportRequest(WEB_DOWNLOAD, uri="http://x/"), ["a"])
    assert download.deltas == {
        Resource.IMAGE_COUNT_UPLOADING: 1,
        Resource.IMAGE_STAGE_TOTAL: 0,
        Resource.IMAGE_SIZE_TOTAL: 0,
    }
    copy = _import_charge("p", active, ImportRequest(COPY_IMAGE), ["b", "c"])
    assert copy.deltas == {
        Resource.IMAGE_COUNT_UPLOADING: 1,
        Resource.IMAGE_STAGE_TOTAL: 3,
        Resource.IMAGE_SIZE_TOTAL: 6,
    }
