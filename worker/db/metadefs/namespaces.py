"""Finding and listing namespaces as Glance's database layer does: admins see every
namespace, others the public ones and their own project's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from flows.requester import RequestContext
from worker.db.metadefs.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefResourceType,
)
from worker.db.metadefs.records import MetadefMissing, Namespace

#: Columns a namespace list may be sorted by.
SORT_KEYS = ("created_at", "updated_at", "namespace", "visibility", "owner")


@dataclass(frozen=True, slots=True)
class NamespaceQuery:
    """``GET /v2/metadefs/namespaces``: paging, order and filters."""

    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    visibility: str | None = None
    resource_types: tuple[str, ...] = ()


def visible_to(viewer: RequestContext) -> Select[MetadefNamespace]:
    """The namespaces ``viewer`` may see."""
    statement = select(MetadefNamespace)
    if viewer.is_admin:
        return statement
    public = MetadefNamespace.visibility == "public"
    if viewer.project_id is None:
        return statement.where(public)
    return statement.where(or_(public, MetadefNamespace.owner == viewer.project_id))


def missing(name: str) -> MetadefMissing:
    """Glance's words for a namespace that is not there (or not visible)."""
    return MetadefMissing(f"Metadata definition namespace={name} was not found.")


async def find_row(session: AsyncSession, name: str, viewer: RequestContext) -> MetadefNamespace:
    """The namespace row if ``viewer`` may see it; MetadefMissing otherwise."""
    row = await session.scalar(visible_to(viewer).where(MetadefNamespace.namespace == name))
    if row is None:
        raise missing(name)
    return row


async def list_rows(
    session: AsyncSession, viewer: RequestContext, query: NamespaceQuery
) -> list[MetadefNamespace]:
    """One page of the namespaces ``viewer`` may see."""
    statement = visible_to(viewer)
    if query.visibility is not None:
        statement = statement.where(MetadefNamespace.visibility == query.visibility)
    if query.resource_types:
        associated = (
            select(MetadefNamespaceResourceType.namespace_id)
            .join(MetadefResourceType)
            .where(MetadefResourceType.name.in_(query.resource_types))
        )
        statement = statement.where(MetadefNamespace.id.in_(associated))
    column = getattr(MetadefNamespace, query.sort_key)
    descending = query.sort_dir == "desc"
    order = (
        (column.desc(), MetadefNamespace.id.desc()) if descending else (column, MetadefNamespace.id)
    )
    if query.marker is not None:
        marker = await find_row(session, query.marker, viewer)
        after = (getattr(marker, query.sort_key), marker.id)
        key = (column, MetadefNamespace.id)
        statement = statement.where(tuple_(*key) < after if descending else tuple_(*key) > after)
    return list(await session.scalars(statement.order_by(*order).limit(query.limit)))


def record(row: MetadefNamespace) -> Namespace:
    """The row as a record."""
    return Namespace(
        namespace=row.namespace,
        owner=row.owner,
        visibility=row.visibility,
        protected=row.protected,
        display_name=row.display_name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
