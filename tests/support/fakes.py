"""In-memory image and task repositories for unit tests of the flow logic."""

from __future__ import annotations

import dataclasses
import time

from flows.errors import NotFound
from flows.events import Announcement
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    DataFacts,
    ImageRecord,
    Location,
    TaskRecord,
    join_store_list,
    split_store_list,
)


class MemoryImages:
    """flows.ports.ImageRepository over a dict."""

    def __init__(self) -> None:
        self.images: dict[str, ImageRecord] = {}

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

    async def take_lock(self, image_id: str, task_id: str, expected: str | None) -> bool:
        holder = self.images[image_id].properties.get(IMPORT_LOCK) or None
        if holder != expected:
            return False
        await self.set_property(image_id, IMPORT_LOCK, task_id)
        return True

    async def release_lock(self, image_id: str, task_id: str) -> bool:
        if self.images[image_id].properties.get(IMPORT_LOCK) != task_id:
            return False
        await self.set_property(image_id, IMPORT_LOCK, "")
        return True


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
        self._update(task_id, status="processing", claimed_by=worker_id)
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
