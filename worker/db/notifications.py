"""The outbox as its relays see it: what waits, who publishes it, what was sent.

Any number of relays (one per worker and API process) share the table. A relay claims one
row at a time by compare-and-swap and marks it sent once the broker confirmed it, so two
relays never publish the same row, and a relay that died holding a claim leaves it to the
others after :data:`CLAIM_SECONDS`. A row is claimable only when no earlier row of the same
image still waits: each image's events reach the broker in the order they happened,
whichever relays publish them (``SELECT ... FOR UPDATE SKIP LOCKED`` would let two relays
publish one image's events out of order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from worker.db.models import Notification, utcnow
from worker.db.transactions import Transactional

#: Seconds after which a claim is presumed dead and the row is published by another relay
#: (well over the time one publish may take).
CLAIM_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Pending:
    """One notification waiting to be published."""

    id: int
    message_id: str
    image_id: str | None
    event_type: str
    priority: str
    payload: Any
    created_at: datetime


class SqlNotifications(Transactional):
    """Reading, claiming and marking the outbox's rows."""

    async def pending(self, relay: str, limit: int = 100) -> list[Pending]:
        """The oldest rows waiting and not claimed by another live relay, oldest first."""
        now = utcnow()

        async def work(session: AsyncSession) -> list[Pending]:
            rows = await session.scalars(
                select(Notification)
                .where(Notification.sent_at.is_(None), _claimable(relay, now))
                .order_by(Notification.id)
                .limit(limit)
            )
            return [_pending(row) for row in rows]

        return await self._in_transaction(work)

    async def claim(self, row_id: int, relay: str) -> bool:
        """Take row ``row_id`` for ``relay`` unless another relay has it or an earlier row of
        its image still waits; tell whether it was taken."""
        now = utcnow()
        earlier = aliased(Notification)
        waiting_before = exists().where(
            earlier.image_id == Notification.image_id,
            earlier.sent_at.is_(None),
            earlier.id < Notification.id,
        )

        async def work(session: AsyncSession) -> bool:
            result = await session.execute(
                update(Notification)
                .where(
                    Notification.id == row_id,
                    Notification.sent_at.is_(None),
                    _claimable(relay, now),
                    ~waiting_before,
                )
                .values(claimed_by=relay, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._in_transaction(work)

    async def mark_sent(self, row_id: int) -> None:
        """The broker has row ``row_id``."""
        await self._set(row_id, sent_at=utcnow())

    async def release(self, row_id: int) -> None:
        """Give a claimed row back (it could not be published now)."""
        await self._set(row_id, claimed_by=None, claimed_at=None)

    async def waiting(self) -> int:
        """How many notifications wait to be published, pool-wide."""

        async def work(session: AsyncSession) -> int:
            count = await session.scalar(
                select(func.count(Notification.id)).where(Notification.sent_at.is_(None))
            )
            return int(count or 0)

        return await self._in_transaction(work)

    async def purge(self, older_than: timedelta) -> int:
        """Forget notifications sent more than ``older_than`` ago; return how many."""
        before = utcnow() - older_than

        async def work(session: AsyncSession) -> int:
            result = await session.execute(
                delete(Notification).where(Notification.sent_at < before)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

        return await self._in_transaction(work)

    async def _set(self, row_id: int, **values: Any) -> None:
        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(Notification)
                .where(Notification.id == row_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

        await self._in_transaction(work)


def _claimable(relay: str, now: datetime) -> Any:
    """Unclaimed, claimed by ``relay`` itself, or claimed by a relay presumed dead."""
    stale = now - timedelta(seconds=CLAIM_SECONDS)
    return or_(
        Notification.claimed_by.is_(None),
        Notification.claimed_by == relay,
        and_(Notification.claimed_at.is_not(None), Notification.claimed_at < stale),
    )


def _pending(row: Notification) -> Pending:
    return Pending(
        id=row.id,
        message_id=row.message_id,
        image_id=row.image_id,
        event_type=row.event_type,
        priority=row.priority,
        payload=row.payload,
        created_at=row.created_at,
    )
