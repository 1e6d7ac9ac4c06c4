"""The image repository: flows.ports.ImageRepository on SQLAlchemy, plus what the CLI needs.

Every method runs in its own transaction. Read-modify-write sequences (the comma-separated
store lists, the lock) first lock the image row (``SELECT ... FOR UPDATE`` on PostgreSQL;
``BEGIN IMMEDIATE`` on SQLite, see :mod:`worker.db.engine`), so concurrent writers from any
number of processes never lose each other's updates.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from flows.errors import ImageStateConflict, NotFound
from flows.events import EventType
from flows.preconditions import STAGEABLE
from flows.records import (
    IMPORT_LOCK,
    DataFacts,
    ImageRecord,
    Location,
    join_store_list,
    split_store_list,
)
from flows.states import ImageStatus
from worker.db.models import Image, ImageLocation, ImageProperty, utcnow
from worker.db.outbox import Outbox
from worker.db.transactions import Transactional

#: What a snapshot of an image reads besides its row.
IMAGE_RELATIONS = (
    selectinload(Image.properties),
    selectinload(Image.locations),
    selectinload(Image.tags),
)


class SqlImageRepository(Transactional):
    """Images, their properties and locations.

    Creating an image and staging its data are announced (``image.create``,
    ``image.update``) through ``outbox``, in the same transaction; what an import changes is
    announced by the flow itself (:mod:`worker.db.events`).
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox | None = None
    ) -> None:
        super().__init__(sessions)
        self._outbox = outbox or Outbox()

    # -- reading -------------------------------------------------------------------------

    async def get(self, image_id: str) -> ImageRecord:
        """Return the image, or raise :class:`NotFound` naming the unknown id."""

        async def work(session: AsyncSession) -> ImageRecord:
            return snapshot(await load_image(session, image_id))

        return await self._in_transaction(work)

    async def list(self) -> builtins.list[ImageRecord]:
        """Every image that is not deleted, oldest first."""

        async def work(session: AsyncSession) -> builtins.list[ImageRecord]:
            rows = await session.scalars(
                select(Image)
                .where(Image.deleted.is_(False))
                .options(*IMAGE_RELATIONS)
                .order_by(Image.created_at, Image.id)
            )
            return [snapshot(image) for image in rows]

        return await self._in_transaction(work)

    # -- creating ------------------------------------------------------------------------

    async def create(
        self,
        *,
        name: str | None,
        disk_format: str,
        container_format: str,
        owner: str | None = None,
        image_id: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> ImageRecord:
        """Record a new ``queued`` image (what ``POST /v2/images`` does) and return it."""
        new_id = image_id or str(uuid.uuid4())

        async def work(session: AsyncSession) -> ImageRecord:
            image = Image(
                id=new_id,
                name=name,
                status="queued",
                disk_format=disk_format,
                container_format=container_format,
                owner=owner,
                properties=[
                    ImageProperty(name=key, value=value)
                    for key, value in (properties or {}).items()
                ],
                locations=[],
                tags=[],
            )
            session.add(image)
            await session.flush()
            created = snapshot(image)
            await self._outbox.image(session, created, EventType.IMAGE_CREATE)
            return created

        return await self._in_transaction(work)

    # -- updating ------------------------------------------------------------------------

    async def set_status(self, image_id: str, status: str) -> None:
        """Set ``images.status``."""

        async def work(session: AsyncSession) -> None:
            result = await session.execute(
                update(Image)
                .where(Image.id == image_id, Image.deleted.is_(False))
                .values(status=status, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"image {image_id} does not exist")

        await self._in_transaction(work)

    async def add_to_list(
        self, image_id: str, prop: str, stores: builtins.list[str]
    ) -> builtins.list[str]:
        """Append stores missing from list property ``prop``; return the new list."""

        def change(current: builtins.list[str]) -> builtins.list[str]:
            merged = list(current)
            for store in stores:
                if store not in merged:
                    merged.append(store)
            return merged

        return await self._change_list(image_id, prop, change)

    async def remove_from_list(
        self, image_id: str, prop: str, stores: builtins.list[str]
    ) -> builtins.list[str]:
        """Remove stores from list property ``prop``; return the new list."""

        def change(current: builtins.list[str]) -> builtins.list[str]:
            return [store for store in current if store not in stores]

        return await self._change_list(image_id, prop, change)

    async def _change_list(
        self, image_id: str, prop: str, change: Callable[[builtins.list[str]], builtins.list[str]]
    ) -> builtins.list[str]:
        async def work(session: AsyncSession) -> builtins.list[str]:
            await lock_image_row(session, image_id)
            row = await _property(session, image_id, prop)
            new = change(split_store_list(row.value or "") if row else [])
            await _put_property(session, image_id, prop, join_store_list(new), row)
            return new

        return await self._in_transaction(work)

    async def mark_staged(self, image_id: str, size: int, publish: Callable[[], None]) -> None:
        """Make staged bits visible and the image ``uploading`` with their size, atomically.

        ``publish`` (moving the complete upload into place) runs while the image row is
        locked and only if the image may still be staged, so two uploads racing for one image
        never leave the record describing the other one's bits.
        """

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            image = await load_image(session, image_id)
            if image.status not in STAGEABLE:
                raise ImageStateConflict(
                    f"Image {image_id} is {image.status}; data can be staged only while it is "
                    + " or ".join(STAGEABLE)
                )
            await asyncio.to_thread(publish)
            image.status = ImageStatus.UPLOADING
            image.size = size
            image.updated_at = utcnow()
            await session.flush()
            await self._outbox.image(session, snapshot(image), EventType.IMAGE_UPDATE)

        await self._in_transaction(work)

    async def set_property(self, image_id: str, name: str, value: str) -> None:
        """Create or replace one property."""

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            await _put_property(
                session, image_id, name, value, await _property(session, image_id, name)
            )

        await self._in_transaction(work)

    async def set_formats(self, image_id: str, disk_format: str, container_format: str) -> None:
        """Set the disk and container formats (after a conversion, or to restore them)."""

        async def work(session: AsyncSession) -> None:
            result = await session.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(
                    disk_format=disk_format,
                    container_format=container_format,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"image {image_id} does not exist")

        await self._in_transaction(work)

    async def delete_property(self, image_id: str, name: str) -> None:
        """Remove one property (missing is fine)."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                delete(ImageProperty).where(
                    ImageProperty.image_id == image_id, ImageProperty.name == name
                )
            )

        await self._in_transaction(work)

    async def add_location(self, image_id: str, url: str, store: str) -> None:
        """Record an active location of the image in ``store`` (once per URL)."""

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            existing = await session.scalar(
                select(ImageLocation).where(
                    ImageLocation.image_id == image_id,
                    ImageLocation.value == url,
                    ImageLocation.deleted.is_(False),
                )
            )
            if existing is None:
                session.add(
                    ImageLocation(
                        image_id=image_id, value=url, meta_data={"store": store}, status="active"
                    )
                )

        await self._in_transaction(work)

    async def remove_location(self, image_id: str, url: str) -> None:
        """Forget a location (Glance soft-deletes it)."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(ImageLocation)
                .where(
                    ImageLocation.image_id == image_id,
                    ImageLocation.value == url,
                    ImageLocation.deleted.is_(False),
                )
                .values(deleted=True, deleted_at=utcnow(), status="deleted")
                .execution_options(synchronize_session=False)
            )

        await self._in_transaction(work)

    async def record_data(self, image_id: str, facts: DataFacts) -> None:
        """Record size, virtual size, checksum and the multihash of the stored data."""

        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(
                    size=facts.size,
                    virtual_size=facts.virtual_size,
                    checksum=facts.checksum,
                    os_hash_algo=facts.os_hash_algo,
                    os_hash_value=facts.os_hash_value,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )

        await self._in_transaction(work)

    # -- the import lock -------------------------------------------------------------------

    async def take_lock(self, image_id: str, task_id: str, expected: str | None) -> bool:
        """Compare-and-swap ``os_glance_import_task`` from ``expected`` to ``task_id``."""

        async def work(session: AsyncSession) -> bool:
            await lock_image_row(session, image_id)
            row = await _property(session, image_id, IMPORT_LOCK)
            holder = (row.value or None) if row else None
            if holder != expected:
                return False
            await _put_property(session, image_id, IMPORT_LOCK, task_id, row)
            return True

        try:
            return await self._in_transaction(work)
        except IntegrityError:
            # Another writer inserted the property between our read and our insert.
            return False

    async def release_lock(self, image_id: str, task_id: str) -> bool:
        """Drop the lock if ``task_id`` still holds it; tell whether it did."""

        async def work(session: AsyncSession) -> bool:
            result = await session.execute(
                delete(ImageProperty).where(
                    ImageProperty.image_id == image_id,
                    ImageProperty.name == IMPORT_LOCK,
                    ImageProperty.value == task_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._in_transaction(work)


async def load_image(session: AsyncSession, image_id: str) -> Image:
    """The image row with its relations, or :class:`NotFound` (deleted images too)."""
    image = await session.scalar(
        select(Image)
        .where(Image.id == image_id, Image.deleted.is_(False))
        .options(*IMAGE_RELATIONS)
    )
    if image is None:
        raise NotFound(f"image {image_id} does not exist")
    return image


async def current_image(session: AsyncSession, image_id: str) -> ImageRecord:
    """The image with what this transaction changed so far (deleted images too): what a
    notification written in this transaction reports."""
    await session.flush()
    image = await session.scalar(
        select(Image)
        .where(Image.id == image_id)
        .options(*IMAGE_RELATIONS)
        .execution_options(populate_existing=True)
    )
    if image is None:
        raise NotFound(f"image {image_id} does not exist")
    return snapshot(image)


async def lock_image_row(session: AsyncSession, image_id: str) -> None:
    """Lock the image row for the rest of the transaction (no-op on SQLite: see engine).

    A deleted image counts as missing: nothing may be written to it any more.
    """
    found = await session.scalar(
        select(Image.id).where(Image.id == image_id, Image.deleted.is_(False)).with_for_update()
    )
    if found is None:
        raise NotFound(f"image {image_id} does not exist")


async def _property(session: AsyncSession, image_id: str, name: str) -> ImageProperty | None:
    return await session.scalar(
        select(ImageProperty).where(ImageProperty.image_id == image_id, ImageProperty.name == name)
    )


async def _put_property(
    session: AsyncSession, image_id: str, name: str, value: str, row: ImageProperty | None
) -> None:
    if row is None:
        session.add(ImageProperty(image_id=image_id, name=name, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()
    await session.flush()


def snapshot(image: Image) -> ImageRecord:
    """The image row, with its properties, locations and tags, as a plain record."""
    return ImageRecord(
        id=image.id,
        name=image.name,
        status=image.status,
        disk_format=image.disk_format,
        container_format=image.container_format,
        owner=image.owner,
        size=image.size,
        virtual_size=image.virtual_size,
        checksum=image.checksum,
        os_hash_algo=image.os_hash_algo,
        os_hash_value=image.os_hash_value,
        properties={prop.name: prop.value or "" for prop in image.properties if not prop.deleted},
        visibility=image.visibility,
        protected=image.protected,
        os_hidden=image.os_hidden,
        min_disk=image.min_disk,
        min_ram=image.min_ram,
        tags=tuple(tag.value for tag in image.tags if not tag.deleted),
        created_at=image.created_at,
        updated_at=image.updated_at,
        locations=tuple(
            Location(
                url=location.value,
                store=str((location.meta_data or {}).get("store", "")),
                status=location.status,
            )
            for location in image.locations
            if not location.deleted
        ),
    )
