"""Deactivating and reactivating an image (Glance's image actions).

An admin (or, by Glance's default policy, a member of the owning project) deactivates an
``active`` image while it is investigated: it stays listed, but its data is not given to
anyone but admins. Only ``active`` and ``deactivated`` images take part; asking again for the
status an image already has changes nothing (and announces nothing). A change is announced
as ``image.update``, as Glance's repository save announces it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import ImageStateConflict
from flows.events import EventType
from flows.states import ImageStatus
from worker.db.image_rows import load_image, snapshot
from worker.db.models import utcnow
from worker.db.repository import Repository


class NotAllowedInStatus(ImageStateConflict):
    """The image's status takes no part in deactivation (Glance answers 403)."""

    reason = "not_allowed_in_status"


class SqlActivation(Repository):
    """Moving an image between ``active`` and ``deactivated``."""

    async def deactivate(self, image_id: str) -> None:
        """``active`` → ``deactivated``."""
        await self._move(image_id, "deactivate", ImageStatus.ACTIVE, ImageStatus.DEACTIVATED)

    async def reactivate(self, image_id: str) -> None:
        """``deactivated`` → ``active``."""
        await self._move(image_id, "reactivate", ImageStatus.DEACTIVATED, ImageStatus.ACTIVE)

    async def _move(
        self, image_id: str, verb: str, source: ImageStatus, target: ImageStatus
    ) -> None:
        async def work(session: AsyncSession) -> None:
            image = await load_image(session, image_id, lock=True)
            if image.status == target:
                return
            if image.status != source:
                raise NotAllowedInStatus(f"Not allowed to {verb} image in status '{image.status}'")
            image.status, image.updated_at = target, utcnow()
            await session.flush()
            await self._outbox.image(session, snapshot(image), EventType.IMAGE_UPDATE)

        await self._in_transaction(work)
