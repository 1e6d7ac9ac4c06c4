"""A project's usage, counted from the records, and admissions that cannot overrun a limit.

On SQLite and PostgreSQL: Glance's definitions of the four resources; twenty admissions at
once against a limit of three admit exactly three (imports and image creations); what an
ended task or a deleted image held counts no more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import OverLimit
from flows.records import IMPORTING_TO_STORES, DataFacts, ImageRecord
from flows.requester import RequestContext
from flows.states import ImageStatus, TaskType
from tests.support.records import RecordWrites
from worker.config.settings import DatabaseSettings
from worker.db.catalog import NewImage
from worker.db.tasks import NewTask, TaskEnd
from worker.db.usage import Admission, Charge, Judge, Resource, admit
from worker.tasks.services import Records

MiB = 1024 * 1024


@pytest.fixture
async def records(database_url: str) -> AsyncIterator[Records]:
    opened = await Records.open(DatabaseSettings(url=database_url), lease_seconds=30)
    try:
        yield opened
    finally:
        await opened.close()


def capped(limits: Mapping[Resource, int]) -> Judge:
    """A judge refusing past ``limits`` (what worker.api.quotas.judge_by does, without words)."""

    def judge(charge: Charge, usage: Mapping[Resource, int]) -> None:
        for resource, delta in charge.deltas.items():
            if usage[resource] + delta > limits[resource]:
                raise OverLimit(f"{resource}: {usage[resource]} + {delta}")

    return judge


def one_more(project: str, resource: Resource, limit: int) -> Admission:
    async def admission(session: AsyncSession, _image: ImageRecord | None, _t: str | None) -> None:
        await admit(session, Charge(project, {resource: 1}), capped({resource: limit}))

    return admission


def taker(records: Records, admission: Admission) -> Callable[[str], Awaitable[str | None]]:
    """Start an import of an image under ``admission``: the task's id, or None if refused."""

    async def take(image_id: str) -> str | None:
        def plan(image: ImageRecord) -> NewTask:
            return NewTask(TaskType.IMPORT, image.id, {"image_id": image.id})

        try:
            return (await records.locks.take_for_new_task(image_id, plan, admission)).id
        except OverLimit:
            return None

    return take


async def _image(
    records: Records, owner: str, status: str = "", size: int = 0, stores: tuple[str, ...] = ()
) -> str:
    """An image of ``owner`` as a test needs it: status, size, locations."""
    image = await records.catalog.create(NewImage(owner=owner, name="i", disk_format="raw"))
    writes = RecordWrites(records.engine)
    if size:
        await writes.record_data(image.id, DataFacts(size, size, "0" * 32, "0" * 128))
    if status:
        await writes.set_status(image.id, status)
    for store in stores:
        await writes.add_location(image.id, f"file:///{store}/{image.id}", store)
    return image.id


async def test_usage_is_counted_as_glance_counts_it(records: Records) -> None:
    await _image(records, "p", ImageStatus.ACTIVE, 3 * MiB, ("a", "b"))
    await _image(records, "p", status=ImageStatus.UPLOADING, size=2 * MiB)
    await _image(records, "p")  # queued: counted, holds nothing
    copying = await _image(records, "p", status=ImageStatus.ACTIVE, size=MiB, stores=("a",))
    await records.images.set_property(copying, IMPORTING_TO_STORES, "b")
    gone = await _image(records, "p", status=ImageStatus.ACTIVE, size=9 * MiB, stores=("a",))
    await records.catalog.delete(gone, RequestContext())
    await _image(records, "someone-else", status=ImageStatus.UPLOADING, size=5 * MiB)

    usage = await records.usage.count("p", list(Resource))

    assert usage == {
        Resource.IMAGE_COUNT_TOTAL: 4,
        Resource.IMAGE_SIZE_TOTAL: 3 * 2 + 1,
        Resource.IMAGE_STAGE_TOTAL: 2 + 1,
        Resource.IMAGE_COUNT_UPLOADING: 2,
    }


async def test_twenty_admissions_at_once_admit_three_until_one_ends(records: Records) -> None:
    images = [await _image(records, "p") for _ in range(20)]
    admission = one_more("p", Resource.IMAGE_COUNT_UPLOADING, 3)

    take = taker(records, admission)
    taken = [task for task in await asyncio.gather(*map(take, images)) if task]

    assert len(taken) == 3
    usage = await records.usage.count("p", [Resource.IMAGE_COUNT_UPLOADING])
    assert usage[Resource.IMAGE_COUNT_UPLOADING] == 3
    await records.tasks.finish(taken[0], TaskEnd.failure("the source answered 404"))
    assert (await records.usage.count("p", [Resource.IMAGE_COUNT_UPLOADING]))[
        Resource.IMAGE_COUNT_UPLOADING
    ] == 2
    left = [i for i in images if i not in {(await records.tasks.get(t)).image_id for t in taken}]
    assert await take(left[0]) is not None
    assert await take(left[1]) is None


async def test_twenty_creations_at_once_admit_the_limit(records: Records) -> None:
    admission = one_more("p", Resource.IMAGE_COUNT_TOTAL, 5)

    async def create() -> bool:
        try:
            await records.catalog.create(NewImage(owner="p"), admission)
        except OverLimit:
            return False
        return True

    made = await asyncio.gather(*(create() for _ in range(20)))

    assert made.count(True) == 5
    assert (await records.usage.count("p", [Resource.IMAGE_COUNT_TOTAL]))[
        Resource.IMAGE_COUNT_TOTAL
    ] == 5


async def test_admitted_imports_hold_what_they_will_store(records: Records) -> None:
    images = [await _image(records, "p", ImageStatus.UPLOADING, 3 * MiB) for _ in range(10)]
    judge = capped({Resource.IMAGE_SIZE_TOTAL: 7})

    async def admission(session: AsyncSession, image: ImageRecord | None, task: str | None) -> None:
        charge = Charge("p", {Resource.IMAGE_SIZE_TOTAL: 3})
        held = {Resource.IMAGE_SIZE_TOTAL: 3 * MiB}
        await admit(session, charge, judge, task_id=task, holds=held)

    take = taker(records, admission)
    taken = [task for task in await asyncio.gather(*map(take, images)) if task]

    assert len(taken) == 2  # 3 + 3 MiB held; a third would store 9 > 7
    size = Resource.IMAGE_SIZE_TOTAL
    assert (await records.usage.count("p", [size]))[size] == 6
    await records.tasks.finish(taken[0], TaskEnd.failure("conversion failed"))
    assert (await records.usage.count("p", [size]))[size] == 3
