"""Glance's metadef tables, by Glance's names.

The contents of a namespace go with it (``ON DELETE CASCADE``); what is not a column of its
own (an object's or a property's JSON schema) is stored as JSON, as Glance stores it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from worker.db.models import Base, utcnow

_CASCADE = "CASCADE"


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)


def _in_namespace() -> Mapped[int]:
    return mapped_column(ForeignKey("metadef_namespaces.id", ondelete=_CASCADE), nullable=False)


class MetadefNamespace(Base):
    """``metadef_namespaces``: a namespace and who owns it."""

    __tablename__ = "metadef_namespaces"
    __table_args__ = (
        UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
        Index("ix_metadef_namespaces_owner", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(32), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False)
    owner: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MetadefObject(Base):
    """``metadef_objects``: a named group of property definitions."""

    __tablename__ = "metadef_objects"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = _in_namespace()
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    required: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MetadefProperty(Base):
    """``metadef_properties``: one property definition (its JSON schema)."""

    __tablename__ = "metadef_properties"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = _in_namespace()
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MetadefTag(Base):
    """``metadef_tags``: a tag name defined by a namespace."""

    __tablename__ = "metadef_tags"
    __table_args__ = (
        UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = _in_namespace()
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MetadefResourceType(Base):
    """``metadef_resource_types``: a kind of resource (``OS::Glance::Image``); those the
    shipped definitions bring are ``protected``."""

    __tablename__ = "metadef_resource_types"
    __table_args__ = (UniqueConstraint("name", name="uq_metadef_resource_types_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MetadefNamespaceResourceType(Base):
    """``metadef_namespace_resource_types``: a namespace applies to a resource type, with
    the prefix its properties take there."""

    __tablename__ = "metadef_namespace_resource_types"

    resource_type_id: Mapped[int] = mapped_column(
        ForeignKey("metadef_resource_types.id"), primary_key=True
    )
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("metadef_namespaces.id", ondelete=_CASCADE), primary_key=True
    )
    properties_target: Mapped[str | None] = mapped_column(String(80))
    prefix: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
