"""One transaction per repository method: the base every repository of records shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.errors import RecordsUnavailable
from worker.db.outages import describe, is_outage, is_unreachable

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The waits before each new attempt of a transaction that met an outage: the first at once
#: (a dead pooled connection, replaced by a fresh one), then growing. About four seconds in
#: all: a database restart or a failover is ridden out, and a database that stays down is
#: reported (:class:`RecordsUnavailable`) while a caller can still answer 503 or put its task
#: back.
RETRY_DELAYS: Final = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(slots=True)
class _Attempt:
    """How far one attempt got: connected, and on to the commit."""

    connected: bool = False
    committing: bool = False


class Transactional:
    """A repository whose every public method runs in a transaction of its own.

    Pooled connections are not pinged before use (a ping is a round trip for every
    transaction, the larger part of a short one's cost): a connection found dead instead —
    the database restarted, a proxy dropped it — is discarded by SQLAlchemy, and the
    transaction runs again on a fresh one. While the database does not answer, the
    transaction is tried again after :data:`RETRY_DELAYS`, then :class:`RecordsUnavailable`
    (transient) is raised; so it is at once when the outage met the commit, whose outcome is
    then unknown (running the work again could apply it twice). Whatever else goes wrong is
    raised as it is.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _in_transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a new session and transaction; commit when it returns."""
        for number, delay in enumerate((*RETRY_DELAYS, None), start=1):
            attempt = _Attempt()
            try:
                return await self._once(work, attempt)
            except Exception as error:
                unreachable = is_unreachable(error) if not attempt.connected else False
                if not (unreachable or is_outage(error)):
                    raise
                if delay is None or attempt.committing:
                    raise RecordsUnavailable(describe(error)) from error
                log.debug(
                    "the database did not answer (%s); attempt %d again in %.2f s",
                    describe(error),
                    number + 1,
                    delay,
                )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _once(self, work: Callable[[AsyncSession], Awaitable[T]], attempt: _Attempt) -> T:
        async with self._sessions() as session, session.begin():
            await session.connection()
            attempt.connected = True
            result = await work(session)
            attempt.committing = True
        return result
