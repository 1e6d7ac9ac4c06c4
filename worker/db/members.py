"""Image members (``image_members``): the projects a ``shared`` image is shared with.

As in Glance: a member is ``pending`` when added, and the project it names sets it
``accepted`` or ``rejected`` (or back to ``pending``); only accepted images appear in that
project's lists, while a direct look works in any status. The image's owner (and an admin)
sees every member; a member sees only itself. Each change is announced as Glance announces it
(``image.member.create``, ``.update``, ``.delete``) in its transaction.

A removed member is soft-deleted, as every row here; adding the project again revives it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import ImageStateConflict, NotFound, OverLimit
from flows.events import EventType
from flows.requester import RequestContext
from flows.states import MemberStatus
from worker.db.image_rows import lock_image_row
from worker.db.models import Image, ImageMember, utcnow
from worker.db.payloads import member_payload
from worker.db.repository import Repository


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member of an image as the API shows it."""

    image_id: str
    member_id: str
    status: str
    created_at: datetime | None
    updated_at: datetime | None


class SqlMembers(Repository):
    """The members of each image, each method in one transaction."""

    async def list(self, image_id: str, viewer: RequestContext) -> builtins.list[MemberRecord]:
        """The members ``viewer`` may see: all of them for the owner or an admin, else only
        the viewer's own membership."""

        async def work(session: AsyncSession) -> builtins.list[MemberRecord]:
            rows = await session.scalars(_visible(image_id, viewer).order_by(ImageMember.id))
            return [_record(row) for row in rows]

        return await self._in_transaction(work)

    async def get(self, image_id: str, member_id: str, viewer: RequestContext) -> MemberRecord:
        """One member, if ``viewer`` may see it; :class:`NotFound` in Glance's words."""

        async def work(session: AsyncSession) -> MemberRecord:
            return _record(await _find(session, image_id, member_id, viewer))

        return await self._in_transaction(work)

    async def add(self, image_id: str, member_id: str, limit: int) -> MemberRecord:
        """Share the image with ``member_id`` (``pending``); at most ``limit`` members
        (-1: no limit), counted with the image row locked."""

        async def work(session: AsyncSession) -> MemberRecord:
            await lock_image_row(session, image_id)
            rows = {
                row.member: row
                for row in await session.scalars(
                    select(ImageMember).where(ImageMember.image_id == image_id)
                )
            }
            existing = rows.get(member_id)
            if existing is not None and not existing.deleted:
                raise ImageStateConflict(f"Member {member_id} is duplicated for image {image_id}")
            attempted = sum(1 for row in rows.values() if not row.deleted) + 1
            if 0 <= limit < attempted:
                raise OverLimit(
                    f"Image member limit exceeded for image {image_id}: The limit has been "
                    "exceeded on the number of allowed image members for this image. "
                    f"Attempted: {attempted}, Maximum: {limit}:"
                )
            now = utcnow()
            row = existing or ImageMember(image_id=image_id, member=member_id)
            row.status, row.deleted, row.deleted_at = MemberStatus.PENDING, False, None
            row.created_at, row.updated_at = now, now
            session.add(row)
            await session.flush()
            return await self._announce(session, row, EventType.IMAGE_MEMBER_CREATE)

        return await self._in_transaction(work)

    async def set_status(
        self, image_id: str, member_id: str, status: MemberStatus, viewer: RequestContext
    ) -> MemberRecord:
        """Set the member's status (the policy decided who may)."""

        async def work(session: AsyncSession) -> MemberRecord:
            await lock_image_row(session, image_id)
            row = await _find(session, image_id, member_id, viewer)
            row.status, row.updated_at = status, utcnow()
            await session.flush()
            return await self._announce(session, row, EventType.IMAGE_MEMBER_UPDATE)

        return await self._in_transaction(work)

    async def remove(self, image_id: str, member_id: str, viewer: RequestContext) -> None:
        """Stop sharing the image with ``member_id``."""

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            row = await _find(session, image_id, member_id, viewer)
            now = utcnow()
            row.deleted, row.deleted_at, row.updated_at = True, now, now
            await session.flush()
            await self._announce(session, row, EventType.IMAGE_MEMBER_DELETE, deleted_at=now)

        await self._in_transaction(work)

    async def _announce(
        self,
        session: AsyncSession,
        row: ImageMember,
        event: EventType,
        deleted_at: datetime | None = None,
    ) -> MemberRecord:
        member = _record(row)
        if self._outbox.wants(event):
            payload = member_payload(
                member.image_id,
                member.member_id,
                member.status,
                member.created_at,
                member.updated_at,
                deleted_at=deleted_at,
            )
            await self._outbox.add(session, event, payload, image_id=member.image_id)
        return member


def _visible(image_id: str, viewer: RequestContext) -> Select[ImageMember]:
    """The image's live members that ``viewer`` may see (Glance's ``_image_member_find``)."""
    query = select(ImageMember).where(
        ImageMember.image_id == image_id, ImageMember.deleted.is_(False)
    )
    if viewer.is_admin:
        return query
    owns = (
        select(func.count(Image.id))
        .where(Image.id == image_id, Image.owner == (viewer.project_id or ""))
        .scalar_subquery()
    )
    return query.where((owns > 0) | (ImageMember.member == (viewer.project_id or "")))


async def _find(
    session: AsyncSession, image_id: str, member_id: str, viewer: RequestContext
) -> ImageMember:
    row = await session.scalar(_visible(image_id, viewer).where(ImageMember.member == member_id))
    if row is None:
        raise NotFound(f"{member_id} not found in the member list of the image {image_id}.")
    return row


def _record(row: ImageMember) -> MemberRecord:
    return MemberRecord(row.image_id, row.member, row.status, row.created_at, row.updated_at)
