"""The image repository: flows.ports.ImageRepository on SQLAlchemy, plus what the CLI needs.

Images are created by the catalogue (:meth:`worker.db.catalog.SqlCatalog.create`), for the
API and the CLI alike; this is what an import and staging write, and the CLI's reads.

Every method runs in its own transaction. Read-modify-write sequences (the comma-separated
store lists) first lock the image row (``SELECT ... FOR UPDATE`` on PostgreSQL;
``BEGIN IMMEDIATE`` on SQLite, see :mod:`worker.db.engine`), so concurrent writers from any
number of processes never lose each other's updates.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import ScalarSelect

from flows.errors import ImageStateConflict, LockLost, NotFound
from flows.events import Announcement, EventType
from flows.preconditions import STAGEABLE
from flows.records import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    DataFacts,
    Hold,
    ImageRecord,
    join_store_list,
    split_store_list,
)
from flows.states import ImageStatus, LocationStatus, TaskStatus
from worker.db.events import record_announcement
from worker.db.image_rows import (
    IMAGE_RELATIONS,
    load_image,
    loaded_property,
    location_deleted,
    lock_image_row,
    property_row,
    put_property,
    set_loaded_property,
    snapshot,
)
from worker.db.models import Image, ImageLocation, ImageProperty, Task, utcnow
from worker.db.repository import Repository
from worker.db.tasks import claim_task
from worker.db.usage import Admission


class SqlImageRepository(Repository):
    """Images, their properties and locations.

    Staging an image's data is announced (``image.update``) through ``outbox``, in the same
    transaction; what an import changes is announced by the flow itself
    (:mod:`worker.db.events`).
    """

    # -- a task's hold, checked in the transaction of the write it guards ------------------

    async def assert_hold(self, hold: Hold) -> None:
        """Raise :class:`LockLost` unless ``hold`` is still the task's (one round trip)."""

        async def work(session: AsyncSession) -> None:
            await _check_hold(session, hold)

        await self._in_transaction(work)

    async def begin_import(
        self,
        hold: Hold,
        targets: builtins.list[str],
        *,
        importing: bool,
        check: Callable[[ImageRecord], None],
    ) -> ImageRecord:
        """Start the task's import in one transaction; return the image as it was before.

        The task must hold the image's lock and ``check`` (the flow's preconditions) must
        pass; then the task is claimed for the worker, the targets join
        ``os_glance_importing_to_stores`` and leave ``os_glance_failed_import``, and the
        image goes ``importing`` when ``importing`` says so.
        """

        async def work(session: AsyncSession) -> ImageRecord:
            image = await load_image(session, hold.image_id, lock=True)
            before = snapshot(image)
            holder = before.properties.get(IMPORT_LOCK) or None
            if holder != hold.task_id:
                raise LockLost(
                    f"task {hold.task_id} does not hold the import lock of image "
                    f"{hold.image_id} (held by {holder or 'nobody'})"
                )
            check(before)
            if not await claim_task(
                session, hold.task_id, hold.worker_id, self._lease, self._outbox
            ):
                raise LockLost(f"task {hold.task_id} is being run by another live worker")
            # Edited on the rows just loaded: written by one flush, nothing read again.
            _edit_loaded_list(image, IMPORTING_TO_STORES, _adding(targets))
            _edit_loaded_list(image, FAILED_IMPORT, _removing(targets))
            if importing:
                image.status = ImageStatus.IMPORTING
                image.updated_at = utcnow()
            await session.flush()
            return before

        return await self._in_transaction(work)

    async def record_stored(
        self,
        hold: Hold,
        url: str,
        store: str,
        *,
        activate: DataFacts | None = None,
        upload: Announcement | None = None,
    ) -> None:
        """Record what the task wrote to ``store`` in one transaction, as Glance saves it.

        The location is added; with ``activate``, the data's facts are recorded and the image
        goes ``active``; ``upload`` is announced with the image as it is then; and ``store``
        leaves ``os_glance_importing_to_stores``. Nothing is written unless the task still
        holds the image.
        """

        async def work(session: AsyncSession) -> None:
            seen = await _check_hold(session, hold, lock=True, location=url)
            if not seen.has_location:
                session.add(_new_location(hold.image_id, url, store))
                await session.flush()
            if activate is not None:
                await session.execute(
                    update(Image)
                    .where(Image.id == hold.image_id)
                    .values(**asdict(activate), status=ImageStatus.ACTIVE, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            if upload is not None:
                await record_announcement(
                    session, self._outbox, hold.task_id, hold.image_id, upload
                )
            remaining = _removing([store])(split_store_list(seen.importing or ""))
            if seen.importing is None:
                await put_property(
                    session, hold.image_id, IMPORTING_TO_STORES, join_store_list(remaining), None
                )
            else:
                await session.execute(
                    update(ImageProperty)
                    .where(
                        ImageProperty.image_id == hold.image_id,
                        ImageProperty.name == IMPORTING_TO_STORES,
                    )
                    .values(value=join_store_list(remaining), updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )

        await self._in_transaction(work)

    async def record_store_failure(self, image_id: str, store: str) -> None:
        """``store`` leaves ``os_glance_importing_to_stores`` and joins the failed list."""

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            await _edit_list(session, image_id, IMPORTING_TO_STORES, _removing([store]))
            await _edit_list(session, image_id, FAILED_IMPORT, _adding([store]))

        await self._in_transaction(work)

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

    # -- updating ------------------------------------------------------------------------

    async def remove_from_list(
        self, image_id: str, prop: str, stores: builtins.list[str]
    ) -> builtins.list[str]:
        """Remove stores from list property ``prop``; return the new list."""

        async def work(session: AsyncSession) -> builtins.list[str]:
            await lock_image_row(session, image_id)
            return await _edit_list(session, image_id, prop, _removing(stores))

        return await self._in_transaction(work)

    async def mark_staged(
        self,
        image_id: str,
        size: int,
        publish: Callable[[], None],
        admission: Admission | None = None,
    ) -> None:
        """Make staged bits visible and the image ``uploading`` with their size, atomically.

        ``publish`` (moving the complete upload into place) runs while the image row is
        locked and only if the image may still be staged (and ``admission``, the caller's
        limits, admits it), so two uploads racing for one image never leave the record
        describing the other one's bits.
        """

        async def work(session: AsyncSession) -> None:
            await lock_image_row(session, image_id)
            image = await load_image(session, image_id)
            if image.status not in STAGEABLE:
                raise ImageStateConflict(
                    f"Image {image_id} is {image.status}; data can be staged only while it is "
                    + " or ".join(STAGEABLE)
                )
            if admission is not None:
                await admission(session, replace(snapshot(image), size=size), None)
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
            await put_property(
                session, image_id, name, value, await property_row(session, image_id, name)
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

    async def remove_location(self, image_id: str, url: str) -> None:
        """Forget a location (Glance soft-deletes it)."""

        async def work(session: AsyncSession) -> None:
            await session.execute(location_deleted(image_id, url, ImageLocation.deleted.is_(False)))

        await self._in_transaction(work)


def _new_location(image_id: str, url: str, store: str) -> ImageLocation:
    """An active location of ``image_id`` in ``store``."""
    return ImageLocation(
        image_id=image_id, value=url, meta_data={"store": store}, status=LocationStatus.ACTIVE
    )


@dataclass(frozen=True)
class _Seen:
    """What a hold check read besides the hold, for the write it guards."""

    #: ``os_glance_importing_to_stores`` (None: the property is not set).
    importing: str | None
    #: Whether the location asked about is already recorded (active).
    has_location: bool


async def _check_hold(
    session: AsyncSession, hold: Hold, *, lock: bool = False, location: str | None = None
) -> _Seen:
    """:class:`LockLost` unless the image's lock is the task's and the worker claims the task;
    :class:`NotFound` when the image is gone (deleted meanwhile).

    One query: with ``lock``, it also locks the image row (as :func:`lock_image_row` does);
    it reads the importing list, and whether ``location`` is recorded, for the write that
    follows.
    """
    query = select(
        Image.id,
        _property_of_image(IMPORT_LOCK),
        select(Task.status).where(Task.id == hold.task_id).scalar_subquery(),
        select(Task.claimed_by).where(Task.id == hold.task_id).scalar_subquery(),
        _property_of_image(IMPORTING_TO_STORES),
        select(ImageLocation.id)
        .where(
            ImageLocation.image_id == Image.id,
            ImageLocation.value == (location or ""),
            ImageLocation.deleted.is_(False),
        )
        .limit(1)
        .scalar_subquery(),
    ).where(Image.id == hold.image_id, Image.deleted.is_(False))
    if lock:
        query = query.with_for_update(of=Image)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"image {hold.image_id} does not exist")
    _image, holder, status, claimed_by, importing, location_id = row
    if (holder or None) != hold.task_id:
        raise LockLost(
            f"task {hold.task_id} no longer holds the import lock of image {hold.image_id} "
            f"(held by {holder or 'nobody'}): lock preempted"
        )
    if status != TaskStatus.PROCESSING or claimed_by != hold.worker_id:
        raise LockLost(
            f"task {hold.task_id} was taken over (status {status}, claimed by {claimed_by}): "
            "lock preempted"
        )
    return _Seen(importing=importing, has_location=location_id is not None)


def _property_of_image(name: str) -> ScalarSelect[str | None]:
    """The value of property ``name`` of the image a query selects (a correlated subquery)."""
    return (
        select(ImageProperty.value)
        .where(ImageProperty.image_id == Image.id, ImageProperty.name == name)
        .scalar_subquery()
    )


def _adding(stores: builtins.list[str]) -> Callable[[builtins.list[str]], builtins.list[str]]:
    def change(current: builtins.list[str]) -> builtins.list[str]:
        merged = list(current)
        for store in stores:
            if store not in merged:
                merged.append(store)
        return merged

    return change


def _removing(stores: builtins.list[str]) -> Callable[[builtins.list[str]], builtins.list[str]]:
    def change(current: builtins.list[str]) -> builtins.list[str]:
        return [store for store in current if store not in stores]

    return change


def _edit_loaded_list(
    image: Image, prop: str, change: Callable[[builtins.list[str]], builtins.list[str]]
) -> None:
    """Rewrite list property ``prop`` on an image loaded with its properties (row locked)."""
    row = loaded_property(image, prop)
    current = split_store_list(row.value or "") if row else []
    set_loaded_property(image, prop, join_store_list(change(current)))


async def _edit_list(
    session: AsyncSession,
    image_id: str,
    prop: str,
    change: Callable[[builtins.list[str]], builtins.list[str]],
) -> builtins.list[str]:
    """Rewrite list property ``prop`` (the image row already locked); return the new list."""
    row = await property_row(session, image_id, prop)
    new = change(split_store_list(row.value or "") if row else [])
    await put_property(session, image_id, prop, join_store_list(new), row)
    return new
