"""The per-project limit on metadef records: the guide's denial of service, closed.

Counted in the transaction that adds the records, after taking the owner's lock
(:mod:`worker.db.project_locks`), so concurrent requests and API replicas cannot jointly pass
the limit.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.metadefs.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefObject,
    MetadefProperty,
    MetadefTag,
)
from worker.db.metadefs.records import MetadefLimitReached
from worker.db.project_locks import lock_project

#: Distinguishes these advisory locks from the schema upgrade's.
_LOCK_SPACE = 0x1A6E0


async def charge(session: AsyncSession, owner: str, adding: int, limit: int | None) -> None:
    """Refuse ``adding`` records to ``owner`` when they would pass ``limit`` (None or -1:
    no limit)."""
    if limit is None or limit < 0 or adding <= 0:
        return
    await lock_project(session, _LOCK_SPACE, owner)
    used = await owned(session, owner)
    if used + adding > limit:
        raise MetadefLimitReached(
            f"Project {owner} may own at most {limit} metadef records (namespaces, objects, "
            f"properties, tags and resource type associations); it owns {used} and this "
            f"request adds {adding}. Delete some, or ask the cloud admin to raise "
            "[metadefs] project_limit."
        )


async def owned(session: AsyncSession, owner: str) -> int:
    """How many metadef records ``owner``'s namespaces hold, the namespaces included."""
    mine = select(MetadefNamespace.id).where(MetadefNamespace.owner == owner)
    total = 0
    total += await session.scalar(select(func.count()).select_from(mine.subquery())) or 0
    for model in (MetadefObject, MetadefProperty, MetadefTag, MetadefNamespaceResourceType):
        counted = select(func.count()).where(model.namespace_id.in_(mine))
        total += await session.scalar(counted) or 0
    return total
