"""The image catalogue as the Image API sees it: create, list, change and delete images.

:mod:`worker.db.images` is what an import writes (the flow's port); this module is what API
callers ask for. Deleting changes the record at once and records, in the same transaction, a
delete task that the workers carry out (``image_delete`` / ``store_delete``), so no data is
ever left without a task that will remove it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import ImageStateConflict, LastLocation, NotFound, ProtectedImage
from flows.events import EventType, Priority
from flows.records import IMPORT_LOCK, ImageRecord, TaskRecord
from flows.requester import RequestContext
from flows.states import ImageStatus, LocationStatus, TaskType
from worker.db.deletions import DeleteTaskInput, DoomedLocation
from worker.db.image_rows import (
    IMAGE_RELATIONS,
    add_image,
    load_image,
    loaded_property,
    lock_image_row,
    snapshot,
)
from worker.db.listing import ImageQuery, apply_query
from worker.db.liveness import is_alive
from worker.db.models import (
    Image,
    ImageLocation,
    ImageMember,
    ImageProperty,
    ImageTag,
    utcnow,
)
from worker.db.payloads import send_payload
from worker.db.repository import Repository
from worker.db.tasks import NewTask, add_task
from worker.db.usage import Admission

#: Core attributes a caller may change (the rest are read-only or reserved).
MUTABLE_CORE = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_disk",
    "min_ram",
    "disk_format",
    "container_format",
    "owner",
)


@dataclass(frozen=True, slots=True)
class NewImage:
    """``POST /v2/images``: the attributes of a new image."""

    owner: str | None
    name: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0
    tags: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)
    image_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImageChanges:
    """``PATCH /v2/images/{id}``: new core values, properties set and removed, new tags."""

    core: Mapping[str, Any] = field(default_factory=dict)
    set_properties: Mapping[str, str] = field(default_factory=dict)
    remove_properties: tuple[str, ...] = ()
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a deletion left for the workers: the task (None when there was no data)."""

    image: ImageRecord
    task: TaskRecord | None


class SqlCatalog(Repository):
    """The API's reads and writes of images, each in one transaction.

    Every change is announced as Glance announces it (``image.create``, ``image.update``,
    ``image.delete``) through ``outbox``, in the transaction that makes it.
    """

    # -- reading -------------------------------------------------------------------------

    async def find(self, image_id: str, viewer: RequestContext) -> ImageRecord:
        """The image if ``viewer`` may see it; :class:`NotFound` otherwise (as Glance hides)."""

        async def work(session: AsyncSession) -> ImageRecord:
            try:
                image = await load_image(session, image_id)
            except NotFound:
                image = None
            if image is None or not await _may_see(session, image, viewer):
                raise NotFound(f"No image found with ID {image_id}")
            return snapshot(image)

        return await self._in_transaction(work)

    async def list(self, query: ImageQuery, viewer: RequestContext) -> list[ImageRecord]:
        """One page of the images ``viewer`` may list, filtered and sorted by ``query``."""

        async def work(session: AsyncSession) -> list[ImageRecord]:
            marker = None
            if query.marker is not None:
                marker = await session.scalar(select(Image).where(Image.id == query.marker))
                if marker is None or not await _may_see(session, marker, viewer):
                    raise NotFound(f"marker {query.marker} could not be found")
            statement = _listable(select(Image), query, viewer).options(*IMAGE_RELATIONS)
            rows = await session.scalars(apply_query(statement, query, marker))
            return [snapshot(image) for image in rows.unique()]

        return await self._in_transaction(work)

    # -- writing -------------------------------------------------------------------------

    async def create(self, new: NewImage, admission: Admission | None = None) -> ImageRecord:
        """Record a new ``queued`` image and return it (``admission``: the caller's limits,
        checked in the same transaction)."""

        async def work(session: AsyncSession) -> ImageRecord:
            image_id = new.image_id or str(uuid.uuid4())
            if await session.scalar(select(Image.id).where(Image.id == image_id)) is not None:
                raise ImageStateConflict(f"An image with identifier {image_id} already exists")
            if admission is not None:
                await admission(session, None, None)
            image = Image(
                id=image_id,
                name=new.name,
                status=ImageStatus.QUEUED,
                disk_format=new.disk_format,
                container_format=new.container_format,
                owner=new.owner,
                visibility=new.visibility,
                protected=new.protected,
                os_hidden=new.os_hidden,
                min_disk=new.min_disk,
                min_ram=new.min_ram,
                properties=[ImageProperty(name=k, value=v) for k, v in new.properties.items()],
                locations=[],
                tags=[ImageTag(value=tag) for tag in dict.fromkeys(new.tags)],
            )
            return await add_image(session, image, self._outbox)

        return await self._in_transaction(work)

    async def update(self, image_id: str, changes: ImageChanges) -> ImageRecord:
        """Apply ``changes`` atomically and return the image as it now is."""

        async def work(session: AsyncSession) -> ImageRecord:
            await lock_image_row(session, image_id)
            image = await load_image(session, image_id)
            _apply_core(image, changes.core)
            _apply_properties(image, changes)
            if changes.tags is not None:
                _replace_tags(image, changes.tags)
            image.updated_at = utcnow()
            await session.flush()
            session.expire(image)
            updated = snapshot(await load_image(session, image_id))
            await self._outbox.image(session, updated, EventType.IMAGE_UPDATE)
            return updated

        return await self._in_transaction(work)

    async def delete(self, image_id: str, requester: RequestContext) -> Deletion:
        """Delete the image now; its data is left to an ``image_delete`` task.

        Every active location becomes ``pending_delete`` and is listed in the task's input,
        with whether staged bits exist, all in one transaction with the image's deletion.
        """

        async def work(session: AsyncSession) -> Deletion:
            await lock_image_row(session, image_id)
            image = await load_image(session, image_id)
            if image.protected:
                raise ProtectedImage(f"Image {image_id} is protected and cannot be deleted.")
            doomed = [loc for loc in image.locations if _is_active(loc)]
            staged = image.status in (ImageStatus.UPLOADING, ImageStatus.IMPORTING)
            for location in doomed:
                location.status = LocationStatus.PENDING_DELETE
            now = utcnow()
            image.deleted, image.deleted_at, image.updated_at = True, now, now
            image.status = ImageStatus.DELETED
            await session.flush()
            task = None
            if doomed or staged:
                task = await self._delete_task(
                    session, TaskType.IMAGE_DELETE, image_id, doomed, staged, requester
                )
            deleted = snapshot(image)
            await self._outbox.image(session, deleted, EventType.IMAGE_DELETE, deleted_at=now)
            return Deletion(deleted, task)

        return await self._in_transaction(work)

    async def delete_from_store(
        self, image_id: str, store: str, requester: RequestContext
    ) -> TaskRecord:
        """Forget the image's location in ``store`` now; leave its data to a task.

        Glance's rules: the image must be ``active``; its only copy cannot be removed (delete
        the image instead). imgworker adds: not while an import or copy holds the image.
        """

        async def work(session: AsyncSession) -> TaskRecord:
            await lock_image_row(session, image_id)
            image = await load_image(session, image_id)
            active = [loc for loc in image.locations if _is_active(loc)]
            chosen = [loc for loc in active if (loc.meta_data or {}).get("store") == store]
            if image.status != ImageStatus.ACTIVE:
                raise ImageStateConflict(
                    f"Image {image_id} is {image.status}; data can be removed from a store "
                    "only while the image is active."
                )
            if not chosen:
                raise NotFound(f"Image {image_id} is not available in store {store}.")
            if len(chosen) == len(active):
                raise LastLocation(
                    "Cannot delete image data from the only store containing it. "
                    "Consider deleting the image instead."
                )
            await self._refuse_while_importing(session, image)
            for location in chosen:
                location.status = LocationStatus.PENDING_DELETE
            image.updated_at = utcnow()
            task = await self._delete_task(
                session, TaskType.STORE_DELETE, image_id, chosen, False, requester
            )
            await self._outbox.image(session, snapshot(image), EventType.IMAGE_UPDATE)
            return task

        return await self._in_transaction(work)

    async def _refuse_while_importing(self, session: AsyncSession, image: Image) -> None:
        """:class:`ImageStateConflict` while a live task holds the image's import lock."""
        lock = loaded_property(image, IMPORT_LOCK)
        holder = lock.value if lock is not None else None
        if holder and await is_alive(session, holder, self._lease):
            raise ImageStateConflict(
                f"Image {image.id} is being imported or copied by task {holder}; "
                "remove data from a store once that task has ended."
            )

    async def _delete_task(
        self,
        session: AsyncSession,
        kind: TaskType,
        image_id: str,
        locations: Sequence[ImageLocation],
        staged: bool,
        requester: RequestContext,
    ) -> TaskRecord:
        """Record the task that removes ``locations``' data (and staged bits if ``staged``)."""
        doomed = tuple(
            DoomedLocation(loc.value, str((loc.meta_data or {}).get("store", "")))
            for loc in locations
        )
        task_input = DeleteTaskInput(image_id, doomed, staged)
        new = NewTask(kind, image_id, task_input.to_dict(), requester)
        return await add_task(session, new, self._outbox)

    async def announce_send(
        self, image: ImageRecord, bytes_sent: int, receiver: RequestContext
    ) -> None:
        """Record ``image.send``: ``receiver`` downloaded ``bytes_sent`` bytes of ``image``
        (at ``error`` priority when that is not the whole image, as Glance does)."""
        if not self._outbox.wants(EventType.IMAGE_SEND):
            return
        payload = send_payload(image, bytes_sent, receiver.project_id, receiver.user_id)
        priority = Priority.INFO if bytes_sent == image.size else Priority.ERROR

        async def work(session: AsyncSession) -> None:
            await self._outbox.add(
                session, EventType.IMAGE_SEND, payload, image_id=image.id, priority=priority
            )

        await self._in_transaction(work)


def _is_active(location: ImageLocation) -> bool:
    return not location.deleted and location.status == LocationStatus.ACTIVE


def _apply_core(image: Image, core: Mapping[str, Any]) -> None:
    for key, value in core.items():
        if key not in MUTABLE_CORE:
            raise ValueError(f"{key} is not a mutable attribute")
        changes_format = key in ("disk_format", "container_format")
        if changes_format and value != getattr(image, key) and image.status != ImageStatus.QUEUED:
            raise ImageStateConflict(f"Attribute {key} can be only replaced for a queued image.")
        setattr(image, key, value)


def _apply_properties(image: Image, changes: ImageChanges) -> None:
    by_name = {prop.name: prop for prop in image.properties}
    for name in changes.remove_properties:
        prop = by_name.pop(name, None)
        if prop is not None:
            image.properties.remove(prop)
    for name, value in changes.set_properties.items():
        existing = by_name.get(name)
        if existing is None:
            image.properties.append(ImageProperty(name=name, value=value))
        else:
            existing.value = value
            existing.updated_at = utcnow()


def _replace_tags(image: Image, tags: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(tags))
    for tag in list(image.tags):
        if tag.value not in wanted:
            image.tags.remove(tag)
    present = {tag.value for tag in image.tags}
    for value in wanted:
        if value not in present:
            image.tags.append(ImageTag(value=value))


def _member_of(project_id: str | None, statuses: Sequence[str] | None) -> Any:
    """An EXISTS clause: the image is shared with ``project_id`` (in one of ``statuses``)."""
    condition = and_(
        ImageMember.image_id == Image.id,
        ImageMember.member == (project_id or ""),
        ImageMember.deleted.is_(False),
    )
    if statuses is not None:
        condition = and_(condition, ImageMember.status.in_(statuses))
    return exists().where(condition)


def _listable(statement: Select[Any], query: ImageQuery, viewer: RequestContext) -> Select[Any]:
    """Restrict ``statement`` to what ``viewer`` may list, as Glance does."""
    statement = statement.where(Image.deleted.is_(False))
    visibility = query.visibility
    mine = Image.owner == viewer.project_id if viewer.project_id else false()
    member_statuses = (query.member_status,) if query.member_status != "all" else None
    shared_with_me = and_(
        Image.visibility == "shared", _member_of(viewer.project_id, member_statuses)
    )
    if visibility is None:
        if viewer.is_admin:
            return statement
        return statement.where(or_(mine, Image.visibility == "public", shared_with_me))
    if visibility == "all":
        if viewer.is_admin:
            return statement
        return statement.where(
            or_(mine, Image.visibility.in_(("public", "community")), shared_with_me)
        )
    statement = statement.where(Image.visibility == visibility)
    if viewer.is_admin or visibility in ("public", "community"):
        return statement
    if visibility == "shared":
        return statement.where(or_(mine, _member_of(viewer.project_id, member_statuses)))
    return statement.where(mine)


async def _may_see(session: AsyncSession, image: Image, viewer: RequestContext) -> bool:
    """Glance's visibility rules for showing one image."""
    if viewer.is_admin or image.visibility in ("public", "community"):
        return True
    if viewer.project_id is not None and image.owner == viewer.project_id:
        return True
    if image.visibility != "shared" or viewer.project_id is None:
        return False
    found = await session.scalar(
        select(ImageMember.id).where(
            ImageMember.image_id == image.id,
            ImageMember.member == viewer.project_id,
            ImageMember.deleted.is_(False),
        )
    )
    return found is not None
