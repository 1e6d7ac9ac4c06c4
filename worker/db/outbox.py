"""Writing notifications into the outbox, in the transaction of the change they report.

A notification is a row of ``notifications`` committed (or rolled back) with the record
change it describes: nothing is announced that did not happen, nothing that happened goes
unannounced, and no broker is involved until a relay publishes the row. An import's events
carry a key (task, event, moment) and a key already recorded is silently skipped, so a task
resumed after a crash announces nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows.events import EventType, Priority
from flows.records import ImageRecord, TaskRecord
from flows.states import TaskType
from worker.config.settings import NotificationSettings
from worker.db.models import Notification, utcnow
from worker.db.payloads import Payload, image_payload, task_payload


class Outbox:
    """Adds notification rows to a caller's session (nothing at all when they are off)."""

    def __init__(self, settings: NotificationSettings | None = None) -> None:
        self._enabled = settings is not None and settings.enabled
        self._disabled = frozenset(settings.disabled) if settings is not None else frozenset()

    def wants(self, event: EventType) -> bool:
        """Whether ``event`` is recorded (notifications on, and neither it nor its group
        disabled)."""
        group = event.split(".", 1)[0]
        return self._enabled and event not in self._disabled and group not in self._disabled

    async def add(
        self,
        session: AsyncSession,
        event: EventType,
        payload: Payload,
        *,
        image_id: str | None,
        priority: Priority = Priority.INFO,
        key: str | None = None,
    ) -> None:
        """Record one notification (skipped when ``key`` was recorded before)."""
        if not self.wants(event):
            return
        values: dict[str, Any] = {
            "message_id": str(uuid.uuid4()),
            "dedup_key": key,
            "image_id": image_id,
            "event_type": str(event),
            "priority": str(priority),
            "payload": payload,
            "created_at": utcnow(),
        }
        await session.execute(_insert_once(session, values))

    async def image(
        self,
        session: AsyncSession,
        image: ImageRecord,
        event: EventType,
        *,
        key: str | None = None,
        deleted_at: datetime | None = None,
    ) -> None:
        """Record ``event`` about ``image`` as given."""
        if self.wants(event):
            payload = image_payload(image, deleted_at=deleted_at)
            await self.add(session, event, payload, image_id=image.id, key=key)

    async def task(self, session: AsyncSession, task: TaskRecord, event: EventType) -> None:
        """Record a task event; only import tasks are Glance's (deletions are imgworker's)."""
        if task.type == TaskType.IMPORT:
            key = f"{task.id}/{event}"
            await self.add(session, event, task_payload(task), image_id=task.image_id, key=key)


def _insert_once(session: AsyncSession, values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT (dedup_key) DO NOTHING`` in the session's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(Notification).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(Notification).values(**values).on_conflict_do_nothing()
