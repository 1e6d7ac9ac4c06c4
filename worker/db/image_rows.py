"""An image row as every repository reads it: loaded with its relations, locked, snapshotted.

Shared by the image, task, catalogue and event repositories (each module imports these, so
none of them needs another repository).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Update, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from flows.errors import NotFound
from flows.events import EventType
from flows.records import ImageRecord, Location
from flows.states import LocationStatus
from worker.db.models import Image, ImageLocation, ImageProperty, utcnow
from worker.db.outbox import Outbox

#: What a snapshot of an image reads besides its row, for lists (one query per relation).
IMAGE_RELATIONS = (
    selectinload(Image.properties),
    selectinload(Image.locations),
    selectinload(Image.tags),
)
#: The same for one image: joined into its row's query (one round trip instead of four; an
#: image has a handful of properties, locations and tags, so the joined rows stay few).
ONE_IMAGE_RELATIONS = (
    joinedload(Image.properties),
    joinedload(Image.locations),
    joinedload(Image.tags),
)


async def add_image(session: AsyncSession, image: Image, outbox: Outbox) -> ImageRecord:
    """Insert a new image (its relations given, empty or not) and announce ``image.create``;
    return it as recorded."""
    session.add(image)
    await session.flush()
    created = snapshot(image)
    await outbox.image(session, created, EventType.IMAGE_CREATE)
    return created


async def current_image(session: AsyncSession, image_id: str) -> ImageRecord:
    """The image with what this transaction changed so far (deleted images too): what a
    notification written in this transaction reports."""
    await session.flush()
    result = await session.execute(
        select(Image)
        .where(Image.id == image_id)
        .options(*ONE_IMAGE_RELATIONS)
        .execution_options(populate_existing=True)
    )
    image = result.unique().scalar_one_or_none()
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


async def load_image(session: AsyncSession, image_id: str, *, lock: bool = False) -> Image:
    """The image row with its relations, or :class:`NotFound` (deleted images too); with
    ``lock``, the row is locked by the same query (as :func:`lock_image_row` does)."""
    query = (
        select(Image)
        .where(Image.id == image_id, Image.deleted.is_(False))
        .options(*ONE_IMAGE_RELATIONS)
    )
    if lock:
        query = query.with_for_update(of=Image)
    result = await session.execute(query)
    image = result.unique().scalar_one_or_none()
    if image is None:
        raise NotFound(f"image {image_id} does not exist")
    return image


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


async def property_row(session: AsyncSession, image_id: str, name: str) -> ImageProperty | None:
    """The image's property ``name``, if set."""
    return await session.scalar(
        select(ImageProperty).where(ImageProperty.image_id == image_id, ImageProperty.name == name)
    )


async def put_property(
    session: AsyncSession, image_id: str, name: str, value: str, row: ImageProperty | None
) -> None:
    """Set property ``name`` (``row``: the property as read, None when not set yet)."""
    if row is None:
        session.add(ImageProperty(image_id=image_id, name=name, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()
    await session.flush()


def loaded_property(image: Image, name: str) -> ImageProperty | None:
    """Property ``name`` of an image loaded with its properties, if set."""
    return next((row for row in image.properties if row.name == name), None)


def set_loaded_property(image: Image, name: str, value: str) -> None:
    """Set property ``name`` on an image loaded with its properties (its row locked); written
    by the session's next flush."""
    row = loaded_property(image, name)
    if row is None:
        image.properties.append(ImageProperty(name=name, value=value))
    elif row.value != value:
        row.value = value
        row.updated_at = utcnow()


def location_deleted(image_id: str, url: str, *only: ColumnElement[bool]) -> Update:
    """The ``UPDATE`` that marks the image's location at ``url`` deleted (Glance's soft
    delete), where ``only`` holds too."""
    return (
        update(ImageLocation)
        .where(ImageLocation.image_id == image_id, ImageLocation.value == url, *only)
        .values(status=LocationStatus.DELETED, deleted=True, deleted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
