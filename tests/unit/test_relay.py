"""The outbox and its relays on SQLite: once per event, in order per image, nothing lost."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flows.events import Announcement, EventType
from flows.records import IMPORTING_TO_STORES
from flows.states import ImageStatus, TaskType
from tests.support.records import RecordWrites
from worker.config.settings import DatabaseSettings, NotificationSettings
from worker.db.catalog import NewImage
from worker.db.tasks import NewTask, TaskEnd
from worker.notifications.relay import Relay
from worker.notifications.sinks import LogSink, NotificationUndelivered
from worker.tasks.services import Records


class Sink:
    """Keeps what it is sent; ``failing`` makes it refuse, ``delay`` makes it slow."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failing = False
        self.refused = 0
        self.delay = 0.0

    async def send(self, message: dict[str, Any]) -> None:
        await asyncio.sleep(self.delay)
        if self.failing:
            self.refused += 1
            raise NotificationUndelivered("connection refused")
        self.sent.append(message)

    async def close(self) -> None:
        return None

    def events(self, image_id: str | None = None) -> list[str]:
        return [m["event_type"] for m in self.sent if image_id is None or _about(m, image_id)]


def _about(message: dict[str, Any], image_id: str) -> bool:
    """Whether ``message`` is about the image, or about its task (see :func:`an_import`)."""
    payload = message["payload"]
    return isinstance(payload, dict) and payload.get("id") in (image_id, _task(image_id))


def _task(image_id: str) -> str:
    return f"{image_id[:8]}-task"


class Observer:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.waiting: list[int] = []
        self.failures = 0

    def notification_sent(self, event_type: str) -> None:
        self.sent.append(event_type)

    def notifications_waiting(self, count: int) -> None:
        self.waiting.append(count)

    def notification_failed(self) -> None:
        self.failures += 1


SETTINGS = NotificationSettings(driver="messaging", poll_seconds=0.01)


async def open_records(tmp_path: Path, settings: NotificationSettings = SETTINGS) -> Records:
    database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    return await Records.open(database, lease_seconds=30.0, notifications=settings)


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[Records]:
    opened = await open_records(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def an_import(records: Records, name: str = "img") -> str:
    """An image created, its import task created, claimed, announced and ended."""
    image = await records.catalog.create(
        NewImage(owner=None, name=name, disk_format="raw", container_format="bare")
    )
    task_id = _task(image.id)
    await records.locks.take_for_new_task(
        image.id, lambda _: NewTask(TaskType.IMPORT, image.id, {}, id=task_id)
    )
    await records.tasks.claim(task_id, "w1")
    await RecordWrites(records.engine).set_status(image.id, ImageStatus.IMPORTING)
    await records.events.announce(task_id, image.id, Announcement(EventType.IMAGE_UPDATE, "start"))
    await records.tasks.finish(task_id, TaskEnd.success({"image_id": image.id}))
    return image.id


SEQUENCE = ["image.create", "task.create", "task.processing", "image.update", "image.update"]


async def test_a_relay_publishes_each_image_s_events_in_order_once(records: Records) -> None:
    first, second = await an_import(records, "a"), await an_import(records, "b")
    sink, observer = Sink(), Observer()
    relay = Relay(records.notifications, sink, SETTINGS, "r1", observer)
    assert await relay.relay_once() == 2 * (len(SEQUENCE) + 1)
    assert sink.events(first)[:5] == SEQUENCE
    assert sink.events(second)[:5] == SEQUENCE
    assert sink.events().count("task.success") == 2
    assert await relay.relay_once() == 0
    assert await records.notifications.waiting() == 0
    assert observer.sent.count("image.create") == 2


async def test_the_final_update_says_the_lock_is_released(records: Records) -> None:
    image_id = await an_import(records)
    sink = Sink()
    await Relay(records.notifications, sink, SETTINGS, "r1").relay_once()
    start, end = (m["payload"] for m in sink.sent if m["event_type"] == "image.update")
    assert start["properties"]["os_glance_import_task"]
    assert "os_glance_import_task" not in end["properties"]
    assert end["id"] == image_id and end["status"] == "importing"


async def test_an_announcement_is_recorded_once_per_task_and_moment(records: Records) -> None:
    image = await records.catalog.create(
        NewImage(owner=None, name="x", disk_format="raw", container_format="bare")
    )
    await RecordWrites(records.engine).add_to_list(image.id, IMPORTING_TO_STORES, ["central"])
    again = Announcement(EventType.IMAGE_PREPARE, "store:central", store="central")
    for _ in range(3):
        await records.events.announce("task", image.id, again)
    await records.events.announce("other-task", image.id, again)
    sink = Sink()
    await Relay(records.notifications, sink, SETTINGS, "r1").relay_once()
    prepared = [m for m in sink.sent if m["event_type"] == "image.prepare"]
    assert len(prepared) == 2
    assert prepared[0]["payload"]["backend"] == "central"
    assert prepared[0]["payload"][IMPORTING_TO_STORES] == ["central"]


async def test_a_broker_outage_loses_nothing_and_is_logged_once(
    records: Records, caplog: pytest.LogCaptureFixture
) -> None:
    image_id = await an_import(records)
    sink, observer = Sink(), Observer()
    sink.failing = True
    caplog.set_level(logging.INFO, logger="worker.notifications.relay")
    async with Relay(records.notifications, sink, SETTINGS, "r1", observer):
        await _until(lambda: sink.refused >= 4, "four refused attempts")
        assert observer.waiting[-1] == len(SEQUENCE) + 1
        sink.failing = False
        await _until(lambda: len(sink.sent) == len(SEQUENCE) + 1, "everything to be sent")
        await _until(lambda: observer.waiting[-1] == 0, "the gauge to fall to 0")
    assert sink.events(image_id)[:5] == SEQUENCE
    assert observer.failures >= 4
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "cannot publish" in m]) == 1
    assert len([m for m in messages if "publishing again" in m]) == 1


async def test_two_relays_never_publish_one_event_twice(tmp_path: Path) -> None:
    writer = await open_records(tmp_path)
    others = [await open_records(tmp_path) for _ in range(2)]
    try:
        images = [await an_import(writer, f"i{n}") for n in range(4)]
        sinks = [Sink(), Sink()]
        sinks[1].sent = sinks[0].sent  # one list: the order the broker received them in
        for sink in sinks:
            sink.delay = 0.002
        relays = [
            Relay(r.notifications, s, SETTINGS, f"r{n}")
            for n, (r, s) in enumerate(zip(others, sinks, strict=True))
        ]
        while await writer.notifications.waiting():
            await asyncio.gather(*(relay.relay_once() for relay in relays))
        ids = [m["message_id"] for m in sinks[0].sent]
        assert len(ids) == len(set(ids)) == 4 * (len(SEQUENCE) + 1)
        for image_id in images:
            assert sinks[0].events(image_id) == [*SEQUENCE, "task.success"]
    finally:
        for opened in (writer, *others):
            await opened.close()


async def test_disabled_events_and_groups_are_not_recorded(tmp_path: Path) -> None:
    settings = NotificationSettings(driver="log", disabled=("task", "image.create"))
    records = await open_records(tmp_path, settings)
    try:
        await an_import(records)
        sink = Sink()
        await Relay(records.notifications, sink, settings, "r1").relay_once()
        assert sink.events() == ["image.update", "image.update"]
    finally:
        await records.close()


async def test_noop_records_nothing(tmp_path: Path) -> None:
    records = await open_records(tmp_path, NotificationSettings())
    try:
        await an_import(records)
        assert await records.notifications.waiting() == 0
    finally:
        await records.close()


async def _until(check: Any, what: str) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_log_driver_logs_as_oslo_s_does(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oslo.messaging.notification")
    message = {"event_type": "image.upload", "priority": "ERROR", "payload": "no space"}
    await LogSink().send(message)
    (record,) = caplog.records
    assert (record.name, record.levelno) == ("oslo.messaging.notification.image.upload", 40)
    assert json.loads(record.getMessage()) == message
