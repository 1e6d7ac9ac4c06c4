"""The flow's :class:`~flows.ports.ImageEvents` port on the outbox: an import's announcements."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.errors import NotFound
from flows.events import Announcement
from worker.db.image_rows import current_image, lock_image_row
from worker.db.outbox import Outbox
from worker.db.payloads import announced
from worker.db.transactions import Transactional

log = logging.getLogger(__name__)


class SqlImageEvents(Transactional):
    """:class:`flows.ports.ImageEvents` on the outbox: an import's announcements."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
        super().__init__(sessions)
        self._outbox = outbox

    async def announce(self, task_id: str, image_id: str, announcement: Announcement) -> None:
        """Record ``announcement`` with the image as it is now, once per task and moment.

        The image row is locked first, as every writer of the image locks it: the payload is
        the record between two changes, and one image's events are numbered in the order
        they happened. Never raises: a lost event must not fail an import.
        """
        event = announcement.event
        if not self._outbox.wants(event):
            return

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            await record_announcement(session, self._outbox, task_id, image_id, announcement)

        try:
            await self._in_transaction(work)
        except NotFound:
            log.info("image %s is gone: %s not recorded", image_id, event)
        except Exception:
            log.warning("notification %s of image %s not recorded", event, image_id, exc_info=True)


async def record_announcement(
    session: AsyncSession, outbox: Outbox, task_id: str, image_id: str, announcement: Announcement
) -> None:
    """Record ``announcement`` with the image as this transaction sees it (row locked).

    Once per task and moment: a resumed task announcing the same moment again records
    nothing.
    """
    event = announcement.event
    if not outbox.wants(event):
        return
    image = await current_image(session, image_id)
    priority, payload = announced(image, announcement)
    key = f"{task_id}/{event}/{announcement.moment}"
    await outbox.add(session, event, payload, image_id=image_id, priority=priority, key=key)
