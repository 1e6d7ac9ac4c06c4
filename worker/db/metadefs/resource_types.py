"""Resource types and namespaces' associations with them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.metadefs.models import MetadefNamespaceResourceType, MetadefResourceType
from worker.db.metadefs.records import Association


async def type_named(session: AsyncSession, name: str, protected: bool) -> MetadefResourceType:
    """The resource type ``name``, created (``protected`` or not) when it is new."""
    found = await session.scalar(
        select(MetadefResourceType).where(MetadefResourceType.name == name)
    )
    if found is None:
        found = MetadefResourceType(name=name, protected=protected)
        session.add(found)
        await session.flush()
    return found


async def associations(session: AsyncSession, namespace_id: int) -> list[Association]:
    """The namespace's associations, by type name."""
    found = await session.execute(
        select(MetadefNamespaceResourceType, MetadefResourceType.name)
        .join(MetadefResourceType)
        .where(MetadefNamespaceResourceType.namespace_id == namespace_id)
        .order_by(MetadefResourceType.name)
    )
    return [association(row, name) for row, name in found.all()]


async def association_row(
    session: AsyncSession, namespace_id: int, type_name: str
) -> MetadefNamespaceResourceType | None:
    """The namespace's association with ``type_name``, or None."""
    return await session.scalar(
        select(MetadefNamespaceResourceType)
        .join(MetadefResourceType)
        .where(
            MetadefNamespaceResourceType.namespace_id == namespace_id,
            MetadefResourceType.name == type_name,
        )
    )


def association(row: MetadefNamespaceResourceType, name: str) -> Association:
    """The row as a record."""
    return Association(name, row.prefix, row.properties_target, row.created_at, row.updated_at)
