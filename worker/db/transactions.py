"""One transaction per repository method: the base every repository of records shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


class Transactional:
    """A repository whose every public method runs in a transaction of its own.

    Pooled connections are not pinged before use (a ping is a round trip for every
    transaction, the larger part of a short one's cost): a connection found dead instead —
    the database restarted, a proxy dropped it — is discarded by SQLAlchemy, and the
    transaction runs once more on a fresh one.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _in_transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a new session and transaction; commit when it returns."""
        try:
            return await self._once(work)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            return await self._once(work)

    async def _once(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._sessions() as session, session.begin():
            return await work(session)
