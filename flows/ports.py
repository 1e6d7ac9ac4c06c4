"""What a flow needs from the outside world, as protocols the caller implements.

The worker implements these on top of SQLAlchemy; unit tests use small in-memory fakes.
"""

from __future__ import annotations

from typing import Protocol

from flows.events import Announcement
from flows.records import DataFacts, ImageRecord, TaskRecord


class ImageRepository(Protocol):
    """Reads and updates image records; every method is atomic on its own."""

    async def get(self, image_id: str) -> ImageRecord:
        """Return the image, or raise :class:`flows.errors.NotFound` if it is unknown."""
        ...

    async def set_status(self, image_id: str, status: str) -> None:
        """Set ``images.status``."""
        ...

    async def add_to_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        """Add stores to a comma-separated list property; return the new list."""
        ...

    async def remove_from_list(self, image_id: str, prop: str, stores: list[str]) -> list[str]:
        """Remove stores from a comma-separated list property; return the new list."""
        ...

    async def set_property(self, image_id: str, name: str, value: str) -> None:
        """Create or replace one image property."""
        ...

    async def set_formats(self, image_id: str, disk_format: str, container_format: str) -> None:
        """Set ``images.disk_format`` and ``images.container_format`` (what the bits are)."""
        ...

    async def add_location(self, image_id: str, url: str, store: str) -> None:
        """Record an active location of the image in ``store``."""
        ...

    async def remove_location(self, image_id: str, url: str) -> None:
        """Forget a location (the data itself is deleted by the store)."""
        ...

    async def record_data(self, image_id: str, facts: DataFacts) -> None:
        """Record size, virtual size, checksum and multihash of the stored data."""
        ...

    async def take_lock(self, image_id: str, task_id: str, expected: str | None) -> bool:
        """Compare-and-swap ``os_glance_import_task`` from ``expected`` (None: unset) to ours."""
        ...

    async def release_lock(self, image_id: str, task_id: str) -> bool:
        """Drop the import lock if ``task_id`` still holds it; tell whether it did."""
        ...


class TaskRepository(Protocol):
    """Reads and updates task records (``tasks`` + ``task_info``)."""

    async def get(self, task_id: str) -> TaskRecord:
        """Return the task, or raise :class:`flows.errors.NotFound` if it is unknown."""
        ...

    async def claim(self, task_id: str, worker_id: str) -> None:
        """Mark the task ``processing`` by ``worker_id`` and stamp ``updated_at``."""
        ...

    async def heartbeat(self, task_id: str, worker_id: str) -> bool:
        """Stamp ``updated_at`` if ``worker_id`` still holds the claim; tell whether it does."""
        ...

    async def set_message(self, task_id: str, message: str) -> None:
        """Replace the task's progress/status message."""
        ...


class ImageEvents(Protocol):
    """Records the notifications an import announces (the worker's outbox)."""

    async def announce(self, task_id: str, image_id: str, announcement: Announcement) -> None:
        """Record ``announcement`` with the image as it is now, once per task and moment.

        Never raises for a notification's sake: an import must not fail because an event
        could not be recorded.
        """
        ...
