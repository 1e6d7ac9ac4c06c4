"""Which API node holds or queues which image: ``cache_nodes`` and ``cache_entries``.

Each node writes only its own rows (its disk is the truth; the rows let any node, and
``imgworker cache``, answer for all). A row that drifted from the disk (a write lost to a
database outage) is put right by the node's cleaner, every ``[cache] prune_interval_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from flows.states import LocationStatus
from worker.db.models import Base, Image, ImageLocation, utcnow
from worker.db.transactions import Transactional


class EntryState(StrEnum):
    """Whether a node holds an image or waits to fetch it."""

    QUEUED = "queued"
    CACHED = "cached"


class CacheNode(Base):
    """``cache_nodes``: an API node with a cache, by its configured name."""

    __tablename__ = "cache_nodes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Where the node is reached directly (Glance's ``worker_self_reference_url``).
    url: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CacheEntry(Base):
    """``cache_entries``: one image a node holds (``cached``) or will fetch (``queued``)."""

    __tablename__ = "cache_entries"

    node: Mapped[str] = mapped_column(
        ForeignKey("cache_nodes.name", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    size: Mapped[int | None] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_accessed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One ``cache_entries`` row, as read."""

    node: str
    image_id: str
    state: EntryState
    size: int | None
    hits: int
    #: Epoch seconds (0 when never read), as Glance's cache API gives them.
    last_accessed: float
    last_modified: float


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """What a node's disk says about one entry, for :meth:`SqlCacheRecords.reconcile`."""

    image_id: str
    size: int
    hits: int
    last_accessed: float
    last_modified: float


@dataclass(frozen=True, slots=True)
class ImageState:
    """What the catalogue says of an image a node holds: is it still the same data?"""

    image_id: str
    #: Whether some store still holds it (an active location).
    has_data: bool
    hash_value: str | None


class SqlCacheRecords(Transactional):
    """The cache's rows, each method one transaction."""

    async def register(self, node: str, url: str) -> None:
        """Record that ``node`` runs (again), reached at ``url``."""

        async def work(session: AsyncSession) -> None:
            row = await session.get(CacheNode, node)
            if row is None:
                session.add(CacheNode(name=node, url=url))
            else:
                row.url, row.started_at = url, utcnow()

        await self._in_transaction(work)

    async def nodes(self) -> dict[str, str]:
        """Every node that ever registered: name to URL."""

        async def work(session: AsyncSession) -> dict[str, str]:
            rows = await session.execute(select(CacheNode.name, CacheNode.url))
            return {name: url for name, url in rows}

        return await self._in_transaction(work)

    async def queue(self, node: str, image_id: str) -> bool:
        """Record ``image_id`` as queued on ``node``; False if it is queued or held already."""

        async def work(session: AsyncSession) -> bool:
            if await session.get(CacheEntry, (node, image_id)) is not None:
                return False
            session.add(CacheEntry(node=node, image_id=image_id, state=EntryState.QUEUED))
            return True

        return await self._in_transaction(work)

    async def cached(self, node: str, held: HeldEntry) -> None:
        """Record that ``node`` holds an image now (its queued row, if any, becomes this)."""

        async def work(session: AsyncSession) -> None:
            row = await session.get(CacheEntry, (node, held.image_id))
            if row is None:
                row = CacheEntry(node=node, image_id=held.image_id)
                session.add(row)
            _describe(row, held)

        await self._in_transaction(work)

    async def hit(self, node: str, image_id: str, hits: int, at: float) -> None:
        """A download read ``image_id`` on ``node``: its hit count and access time."""

        async def work(session: AsyncSession) -> None:
            row = await session.get(CacheEntry, (node, image_id))
            if row is not None and row.state == EntryState.CACHED:
                row.hits, row.last_accessed = hits, _moment(at)

        await self._in_transaction(work)

    async def forget(
        self, node: str, image_ids: Iterable[str] | None, state: EntryState | None = None
    ) -> list[str]:
        """Drop ``node``'s rows of ``image_ids`` (None: all), of ``state`` only if given.

        Returns the image ids whose rows went.
        """

        async def work(session: AsyncSession) -> list[str]:
            query = delete(CacheEntry).where(CacheEntry.node == node)
            if image_ids is not None:
                query = query.where(CacheEntry.image_id.in_(list(image_ids)))
            if state is not None:
                query = query.where(CacheEntry.state == state)
            result = await session.execute(query.returning(CacheEntry.image_id))
            return [str(image_id) for image_id in result.scalars()]

        return await self._in_transaction(work)

    async def entries(
        self, node: str | None = None, state: EntryState | None = None
    ) -> list[EntryRow]:
        """Rows of ``node`` (None: every node), of ``state`` (None: both), by node then image."""

        async def work(session: AsyncSession) -> list[EntryRow]:
            query = select(CacheEntry).order_by(CacheEntry.node, CacheEntry.image_id)
            if node is not None:
                query = query.where(CacheEntry.node == node)
            if state is not None:
                query = query.where(CacheEntry.state == state)
            return [_row(entry) for entry in await session.scalars(query)]

        return await self._in_transaction(work)

    async def holders(self, image_id: str) -> list[str]:
        """The URLs of the nodes that hold ``image_id`` (Glance's cached-nodes list)."""

        async def work(session: AsyncSession) -> list[str]:
            query = (
                select(CacheNode.url)
                .join(CacheEntry, CacheEntry.node == CacheNode.name)
                .where(CacheEntry.image_id == image_id, CacheEntry.state == EntryState.CACHED)
                .order_by(CacheNode.name)
            )
            return [str(url) for url in await session.scalars(query)]

        return await self._in_transaction(work)

    async def reconcile(self, node: str, held: Sequence[HeldEntry]) -> None:
        """Make ``node``'s ``cached`` rows say exactly what its disk holds.

        Rows of entries gone are dropped, entries without a row get one; hits and access
        times already recorded are kept when the row is there (the disk does not count hits).
        """
        by_id = {entry.image_id: entry for entry in held}

        async def work(session: AsyncSession) -> None:
            rows = await session.scalars(
                select(CacheEntry).where(
                    CacheEntry.node == node, CacheEntry.state == EntryState.CACHED
                )
            )
            recorded = {row.image_id: row for row in rows}
            for image_id, row in recorded.items():
                if image_id not in by_id:
                    await session.delete(row)
            for image_id, entry in by_id.items():
                found = recorded.get(image_id) or await session.get(CacheEntry, (node, image_id))
                if found is None:
                    found = CacheEntry(node=node, image_id=image_id)
                    session.add(found)
                    _describe(found, entry)
                elif found.state != EntryState.CACHED:
                    _describe(found, entry)

        await self._in_transaction(work)

    async def image_states(self, image_ids: Sequence[str]) -> dict[str, ImageState]:
        """Whether a store still holds each image, and its ``os_hash_value`` (absent: deleted)."""

        async def work(session: AsyncSession) -> dict[str, ImageState]:
            wanted = list(image_ids)
            rows = await session.execute(
                select(Image.id, Image.os_hash_value).where(
                    Image.id.in_(wanted), Image.deleted.is_(False)
                )
            )
            stored = set(
                await session.scalars(
                    select(ImageLocation.image_id).where(
                        ImageLocation.image_id.in_(wanted),
                        ImageLocation.status == LocationStatus.ACTIVE,
                        ImageLocation.deleted.is_(False),
                    )
                )
            )
            return {
                image_id: ImageState(image_id, image_id in stored, hash_value)
                for image_id, hash_value in rows
            }

        return await self._in_transaction(work) if image_ids else {}


def _describe(row: CacheEntry, held: HeldEntry) -> None:
    row.state = EntryState.CACHED
    row.size = held.size
    row.hits = held.hits
    row.last_accessed = _moment(held.last_accessed) if held.last_accessed else None
    row.last_modified = _moment(held.last_modified)


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:  # SQLite gives naive datetimes back (stored as UTC)
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _row(entry: CacheEntry) -> EntryRow:
    return EntryRow(
        node=entry.node,
        image_id=entry.image_id,
        state=EntryState(entry.state),
        size=entry.size,
        hits=entry.hits,
        last_accessed=_epoch(entry.last_accessed),
        last_modified=_epoch(entry.last_modified),
    )
