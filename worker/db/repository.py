"""The base of the repositories that change the records.

Each runs every method in a transaction of its own (:class:`Transactional`), records
Glance's notifications through an outbox in the transaction of the change they report, and
judges whether a task is alive by the lease the records were opened with
(:mod:`worker.db.liveness`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.db.outbox import Outbox
from worker.db.transactions import Transactional


class Repository(Transactional):
    """A repository with its sessions, its ``outbox`` (none: nothing announced) and lease."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox | None = None,
        *,
        lease_seconds: float = 300.0,
    ) -> None:
        super().__init__(sessions)
        self._outbox = outbox or Outbox()
        self._lease = timedelta(seconds=lease_seconds)
