"""What a flow needs from the outside world, as protocols the caller implements.

Each lists only what a flow calls: the worker implements these on top of SQLAlchemy (with
more that its own callers use); unit tests use small in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flows.events import Announcement
from flows.records import DataFacts, Hold, ImageRecord


class ImageRepository(Protocol):
    """What an import writes to its image record; every method is atomic on its own.

    The methods that take a :class:`~flows.records.Hold` write only while the task still
    holds the image (its lock and the worker's claim), checked in the same transaction;
    otherwise they raise :class:`flows.errors.LockLost` (:class:`flows.errors.NotFound` when
    the image was deleted meanwhile).
    """

    async def assert_hold(self, hold: Hold) -> None:
        """Raise unless ``hold`` is still the task's (one cheap look)."""
        ...

    async def begin_import(
        self,
        hold: Hold,
        targets: list[str],
        *,
        importing: bool,
        check: Callable[[ImageRecord], None],
    ) -> ImageRecord:
        """Claim the task and announce the targets in one step; return the image before.

        ``check`` (the preconditions) sees the image first and may raise; then the task is
        claimed for ``hold.worker_id``, the targets join ``os_glance_importing_to_stores``
        and leave ``os_glance_failed_import``, and the image goes ``importing`` if asked.
        """
        ...

    async def record_stored(
        self,
        hold: Hold,
        url: str,
        store: str,
        *,
        activate: DataFacts | None = None,
        upload: Announcement | None = None,
    ) -> None:
        """Record the location written to ``store`` and take it off the importing list.

        With ``activate``, the data's facts are recorded and the image goes ``active`` in the
        same step: nobody ever sees the store gone from the list while the image is not yet
        active, as with Glance, which saves the three together. ``upload`` is announced in
        that step too, once the location is recorded (and the image activated) and before
        the store leaves the list: the moment Glance sends ``image.upload``.
        """
        ...

    async def record_store_failure(self, image_id: str, store: str) -> None:
        """Move ``store`` from ``os_glance_importing_to_stores`` to the failed list."""
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

    async def remove_location(self, image_id: str, url: str) -> None:
        """Forget a location (the data itself is deleted by the store)."""
        ...


class TaskRepository(Protocol):
    """What a running import writes to its task (``tasks`` + ``task_info``)."""

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
