"""Glance's ``images``, ``image_properties``, ``image_locations``, ``image_tags``,
``image_members``, ``tasks`` and ``task_info``.

Table and column names are Glance's, so an operator who knows Glance's schema can read these
records. Only what the worker touches is modelled; one addition: ``tasks.claimed_by``, the
worker holding the task (Glance runs tasks inside the API process and needs no claim).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flows.states import LocationStatus, MemberStatus


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (stored as UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the worker's tables."""


class SoftDeleted:
    """Glance's bookkeeping columns, on every table of its that imgworker models.

    A row is never removed: ``deleted`` and ``deleted_at`` mark it gone (Glance's soft delete).
    """

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Image(Base, SoftDeleted):
    """``images``: one row per image."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    checksum: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    min_disk: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    min_ram: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    visibility: Mapped[str] = mapped_column(
        String(20), default="shared", nullable=False, index=True
    )
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128), index=True)

    properties: Mapped[list[ImageProperty]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="ImageProperty.id"
    )
    locations: Mapped[list[ImageLocation]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="ImageLocation.id"
    )
    tags: Mapped[list[ImageTag]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="ImageTag.id"
    )


class ImageProperty(Base, SoftDeleted):
    """``image_properties``: name/value pairs of an image (unique per image)."""

    __tablename__ = "image_properties"
    __table_args__ = (
        UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str | None] = mapped_column(Text)

    image: Mapped[Image] = relationship(back_populates="properties")


class ImageLocation(Base, SoftDeleted):
    """``image_locations``: where the data lives; ``meta_data`` holds ``{"store": name}``."""

    __tablename__ = "image_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False, index=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    meta_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(30), default=LocationStatus.ACTIVE, nullable=False)

    image: Mapped[Image] = relationship(back_populates="locations")


class ImageTag(Base, SoftDeleted):
    """``image_tags``: free-form tags of an image (unique per image)."""

    __tablename__ = "image_tags"
    __table_args__ = (UniqueConstraint("image_id", "value", name="ix_image_tags_image_id_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False, index=True)
    value: Mapped[str] = mapped_column(String(255), nullable=False)

    image: Mapped[Image] = relationship(back_populates="tags")


class ImageMember(Base, SoftDeleted):
    """``image_members``: a project an image is shared with, and whether it accepted."""

    __tablename__ = "image_members"
    __table_args__ = (
        UniqueConstraint("image_id", "member", name="ix_image_members_image_id_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), nullable=False)
    member: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    can_share: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default=MemberStatus.PENDING, nullable=False)


class Task(Base, SoftDeleted):
    """``tasks``: one import task (``api_image_import``)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_image_id", "image_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The heartbeat: stamped by the task's holder only, never by an update on its own.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    image_id: Mapped[str | None] = mapped_column(String(36))
    claimed_by: Mapped[str | None] = mapped_column(String(255))

    info: Mapped[TaskInfo] = relationship(
        back_populates="task", cascade="all, delete-orphan", uselist=False, lazy="joined"
    )


class TaskInfo(Base):
    """``task_info``: a task's input, result and message."""

    __tablename__ = "task_info"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    input: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)

    task: Mapped[Task] = relationship(back_populates="info")


class QuotaHold(Base):
    """``quota_holds``: what an admitted task will add to its project's usage once it is done
    (an imgworker table; :mod:`worker.db.usage`).

    Counted while the task is unfinished, so work that is admitted but not yet stored counts
    against the limit; the task's end is the release (nothing to delete).
    """

    __tablename__ = "quota_holds"
    __table_args__ = (Index("ix_quota_holds_project", "project", "resource"),)

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(255), nullable=False)
    #: In the resource's own unit before rounding: bytes for the sizes.
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Notification(Base):
    """``notifications``: the outbox of Glance's notifications (an imgworker table).

    A row is written in the transaction of the change it reports and published later by a
    relay (:mod:`worker.notifications.relay`). ``dedup_key`` (task, event, moment) keeps a
    resumed import task from recording an event twice; ``image_id`` orders each image's
    events; ``claimed_by``/``claimed_at`` let one relay of the pool publish a row at a time.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="ix_notifications_dedup_key"),
        Index("ix_notifications_sent_at", "sent_at"),
        Index("ix_notifications_image_id_id", "image_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: oslo.messaging's ``message_id`` (its hex is the ``_unique_id``): kept when re-sent.
    message_id: Mapped[str] = mapped_column(String(36), nullable=False)
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    priority: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
