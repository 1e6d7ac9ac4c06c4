"""In-memory image and task repositories for unit tests of the flow logic."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from flows.errors import LockLost, NotFound
from flows.events import Announcement
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    DataFacts,
    Hold,
    ImageRecord,
    Location,
    TaskRecord,
    join_store_list,
    split_store_list,
)
from flows.states import ImageStatus, TaskStatus


class MemoryImages:
    """flows.ports.ImageRepository over a dict (holds checked against ``tasks`` when set)."""

    def __init__(self, tasks: MemoryTasks | None = None) -> None:
        self.images: dict[str, ImageRecord] = {}
        self.tasks = tasks
        #: Where announcements made in the images' own steps go (set by MemoryEvents).
        self.events: MemoryEvents | None = None

    async def assert_hold(self, hold: Hold) -> None:
        image = await self.get(hold.image_id)
        holder = image.properties.get(IMPORT_LOCK) or None
        if holder != hold.task_id:
            raise LockLost(f"task {hold.task_id} no longer holds image {hold.image_id}")
        if self.tasks is not None:
            task = await self.tasks.get(hold.task_id)
            if task.status != TaskStatus.PROCESSING or task.claimed_by != hold.worker_id:
                raise LockLost(f"task {hold.task_id} was taken over")

    async def begin_import(
        self,
        hold: Hold,
        targets: list[str],
        *,
        importing: bool,
        check: Callable[[ImageRecord], None],
    ) -> ImageRecord:
        before = await self.get(hold.image_id)
        if (before.properties.get(IMPORT_LOCK) or None) != hold.task_id:
            raise LockLost(f"task {hold.task_id} does not hold image {hold.image_id}")
        check(before)
        if self.tasks is not None:
            await self.tasks.claim(hold.task_id, hold.worker_id)
        await self.add_to_list(hold.image_id, IMPORTING_TO_STORES, targets)
        await self.remove_from_list(hold.image_id, FAILED_IMPORT, targets)
        if importing:
            await self.set_status(hold.image_id, ImageStatus.IMPORTING)
        return before

    async def record_stored(
        self,
        hold: Hold,
        url: str,
        store: str,
        *,
        activate: DataFacts | None = None,
        upload: Announcement | None = None,
    ) -> None:
        await self.assert_hold(hold)
        await self.add_location(hold.image_id, url, store)
        if activate is not None:
            await self.record_data(hold.image_id, activate)
            await self.set_status(hold.image_id, ImageStatus.ACTIVE)
        if upload is not None and self.events is not None:
            await self.events.announce(hold.task_id, hold.image_id, upload)
        await self.remove_from_list(hold.image_id, IMPORTING_TO_STORES, [store])

    async def record_store_failure(self, image_id: str, store: str) -> None:
        await self.remove_from_list(image_id, IMPORTING_TO_STORES, [store])
        await self.add_to_list(image_id, FAILED_IMPORT, [store])

    def put(self, image: ImageRecord) -> None:
        self.images[image.id] = image

    async def get(self, image_id: str) -> ImageRecord:
        try:
            return self.images[image_id]
        except KeyError:
            raise NotFound(f"image {image_id} does not exist") from None

    def _update(self, image_id: str, **changes: object) -> None:
        self.images[image_id] = dataclasses.replace(self.images[image_id], **changes)  # type: ignore[arg-type]

    async def set_status(self, image_id: str, status: str) -> None:
        self._update(image_id, status=status)

    async def _set_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        props = dict(self.images[image_id].properties)
        props[prop] = join_store_list(stores)
        self._update(image_id, properties=props)
        return stores

    async def add_to_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        current = split_store_list(self.images[image_id].properties.get(prop, ""))
        return await self._set_list(
            image_id, prop, current + [s for s in stores if s not in current]
        )

    async def remove_from_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        current = split_store_list(self.images[image_id].properties.get(prop, ""))
        return await self._set_list(image_id, prop, [s for s in current if s not in stores])

    async def set_property(self, image_id: str, name: str, value: str) -> None:
        props = dict(self.images[image_id].properties)
        props[name] = value
        self._update(image_id, properties=props)

    async def set_formats(self, image_id: str, disk_format: str, container_format: str) -> None:
        self._update(image_id, disk_format=disk_format, container_format=container_format)

    async def add_location(self, image_id: str, url: str, store: str) -> None:
        locations = (*self.images[image_id].locations, Location(url, store))
        self._update(image_id, locations=locations)

    async def remove_location(self, image_id: str, url: str) -> None:
        locations = tuple(loc for loc in self.images[image_id].locations if loc.url != url)
        self._update(image_id, locations=locations)

    async def record_data(self, image_id: str, facts: DataFacts) -> None:
        self._update(
            image_id,
            size=facts.size,
            virtual_size=facts.virtual_size,
            checksum=facts.checksum,
            os_hash_algo=facts.os_hash_algo,
            os_hash_value=facts.os_hash_value,
        )


class MemoryTasks:
    """flows.ports.TaskRepository over a dict."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskRecord] = {}
        self.beats: dict[str, float] = {}

    def put(self, task: TaskRecord) -> None:
        self.tasks[task.id] = task

    async def get(self, task_id: str) -> TaskRecord:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise NotFound(f"task {task_id} does not exist") from None

    def _update(self, task_id: str, **changes: object) -> None:
        self.tasks[task_id] = dataclasses.replace(self.tasks[task_id], **changes)  # type: ignore[arg-type]

    async def claim(self, task_id: str, worker_id: str) -> None:
        self._update(task_id, status=TaskStatus.PROCESSING, claimed_by=worker_id)
        self.beats[task_id] = time.monotonic()

    async def heartbeat(self, task_id: str, worker_id: str) -> bool:
        self.beats[task_id] = time.monotonic()
        return self.tasks[task_id].claimed_by == worker_id

    async def set_message(self, task_id: str, message: str) -> None:
        self._update(task_id, message=message)


class MemoryEvents:
    """flows.ports.ImageEvents over a list: each announcement with the image at that moment.

    Like the worker's outbox, an announcement a task already made (same event and moment) is
    not recorded again.
    """

    def __init__(self, images: MemoryImages) -> None:
        self.images = images
        # What the images record in their own steps (image.upload) is heard here too.
        images.events = self
        #: ``(event, moment, store, failure kind, status, importing, failed)``, in order.
        self.rows: list[tuple[str, str, str, str, str, str, str]] = []
        self._seen: set[tuple[str, str, str]] = set()

    async def announce(self, task_id: str, image_id: str, announcement: Announcement) -> None:
        key = (task_id, announcement.event, announcement.moment)
        if key in self._seen:
            return
        self._seen.add(key)
        image = self.images.images[image_id]
        failure = announcement.failure
        self.rows.append(
            (
                announcement.event,
                announcement.moment,
                announcement.store or "",
                failure.kind if failure else "",
                image.status,
                image.properties.get(IMPORTING_TO_STORES, ""),
                image.properties.get(FAILED_IMPORT, ""),
            )
        )

    def events(self) -> list[str]:
        """The event types, in order."""
        return [row[0] for row in self.rows]
