"""The metadef catalogue as the API asks for it: each call one transaction.

Visibility is Glance's (:mod:`.namespaces`); deleting a protected namespace, or anything in
one, is refused; a creation is charged to the namespace owner's limit (:mod:`.limits`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.requester import RequestContext
from worker.db.metadefs import items, namespaces, resource_types
from worker.db.metadefs.items import Kind
from worker.db.metadefs.limits import charge
from worker.db.metadefs.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefResourceType,
)
from worker.db.metadefs.namespaces import NamespaceQuery, find_row, record
from worker.db.metadefs.records import (
    Association,
    Contents,
    Item,
    MetadefDuplicate,
    MetadefMissing,
    MetadefProtected,
    Namespace,
)
from worker.db.models import utcnow
from worker.db.transactions import Transactional


class MetadefCatalog(Transactional):
    """Namespaces and their contents. ``limit``: records the namespace's owner may own
    (None: not limited, for callers the ``context_is_admin`` rule admits)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)

    # -- namespaces ----------------------------------------------------------------------

    async def namespaces(
        self, viewer: RequestContext, query: NamespaceQuery
    ) -> list[tuple[Namespace, list[Association]]]:
        """One page of visible namespaces, each with its associations."""

        async def work(session: AsyncSession) -> list[tuple[Namespace, list[Association]]]:
            rows = await namespaces.list_rows(session, viewer, query)
            return [(record(r), await resource_types.associations(session, r.id)) for r in rows]

        return await self._in_transaction(work)

    async def namespace(self, name: str, viewer: RequestContext) -> Namespace:
        """One visible namespace (MetadefMissing otherwise)."""

        async def work(session: AsyncSession) -> Namespace:
            return record(await find_row(session, name, viewer))

        return await self._in_transaction(work)

    async def contents(self, name: str, viewer: RequestContext) -> Contents:
        """Everything a visible namespace defines."""

        async def work(session: AsyncSession) -> Contents:
            row = await find_row(session, name, viewer)
            found = {
                kind: tuple(items.item(r) for r in await items.rows(session, kind, row.id))
                for kind in Kind
            }
            return Contents(
                objects=found[Kind.OBJECT],
                properties=found[Kind.PROPERTY],
                tags=found[Kind.TAG],
                associations=tuple(await resource_types.associations(session, row.id)),
            )

        return await self._in_transaction(work)

    async def create(self, namespace: Namespace, contents: Contents, limit: int | None) -> None:
        """A new namespace with its contents (MetadefDuplicate when the name is taken)."""

        async def work(session: AsyncSession) -> None:
            await charge(session, namespace.owner, 1 + contents.count(), limit)
            await add_namespace(session, namespace, contents, protected_types=False)

        await self._in_transaction(work)

    async def update(self, name: str, viewer: RequestContext, new: Namespace) -> Namespace:
        """Replace a namespace's attributes (it may be renamed)."""

        async def work(session: AsyncSession) -> Namespace:
            row = await find_row(session, name, viewer)
            if new.namespace != name and await _taken(session, new.namespace):
                raise MetadefDuplicate(
                    "Invalid update. It would result in a duplicate metadata definition "
                    f"namespace with the same name of {new.namespace}"
                )
            row.namespace, row.display_name = new.namespace, new.display_name
            row.description, row.visibility = new.description, new.visibility
            row.protected, row.owner, row.updated_at = new.protected, new.owner, utcnow()
            await session.flush()
            return record(row)

        return await self._in_transaction(work)

    async def delete(self, name: str, viewer: RequestContext) -> None:
        """Delete a namespace and everything in it, unless it is protected."""

        async def work(session: AsyncSession) -> None:
            row = await _unprotected(session, name, viewer)
            await session.execute(delete(MetadefNamespace).where(MetadefNamespace.id == row.id))

        await self._in_transaction(work)

    async def clear(self, name: str, viewer: RequestContext, kind: Kind) -> None:
        """Delete every item of ``kind`` of an unprotected namespace."""

        async def work(session: AsyncSession) -> None:
            row = await _unprotected(session, name, viewer)
            await items.remove_all(session, kind, row.id)

        await self._in_transaction(work)

    # -- objects, properties, tags ---------------------------------------------------------

    async def items(self, name: str, viewer: RequestContext, kind: Kind) -> list[Item]:
        """Every item of ``kind`` in a visible namespace."""

        async def work(session: AsyncSession) -> list[Item]:
            row = await find_row(session, name, viewer)
            return [items.item(r) for r in await items.rows(session, kind, row.id)]

        return await self._in_transaction(work)

    async def item(self, name: str, viewer: RequestContext, kind: Kind, item_name: str) -> Item:
        """One item (MetadefMissing when absent)."""

        async def work(session: AsyncSession) -> Item:
            row = await find_row(session, name, viewer)
            return items.item(await _existing(session, kind, row, item_name))

        return await self._in_transaction(work)

    async def add(
        self, name: str, viewer: RequestContext, kind: Kind, new: Item, limit: int | None
    ) -> Item:
        """A new item in a visible namespace."""

        async def work(session: AsyncSession) -> Item:
            row = await find_row(session, name, viewer)
            await charge(session, row.owner, 1, limit)
            if await items.find(session, kind, row.id, new.name) is not None:
                raise kind.duplicate(new.name, name)
            added = items.new_row(kind, row.id, new)
            session.add(added)
            await session.flush()
            return items.item(added)

        return await self._in_transaction(work)

    async def set_tags(
        self,
        name: str,
        viewer: RequestContext,
        tags: Sequence[str],
        append: bool,
        limit: int | None,
    ) -> list[Item]:
        """``POST {ns}/tags``: the namespace's tags become ``tags`` (or gain them)."""

        async def work(session: AsyncSession) -> list[Item]:
            row = await find_row(session, name, viewer)
            existing = {r.name for r in await items.rows(session, Kind.TAG, row.id)}
            if len(set(tags)) != len(tags):
                raise MetadefDuplicate("A tag appears more than once in the request.")
            if append and existing & set(tags):
                raise Kind.TAG.duplicate(sorted(existing & set(tags))[0], name)
            if not append:
                await items.remove_all(session, Kind.TAG, row.id)
                existing = set()
            await charge(session, row.owner, len(tags), limit)
            added = [items.new_row(Kind.TAG, row.id, Item(tag)) for tag in tags]
            session.add_all(added)
            await session.flush()
            return [items.item(r) for r in added]

        return await self._in_transaction(work)

    async def change(
        self, name: str, viewer: RequestContext, kind: Kind, item_name: str, new: Item
    ) -> Item:
        """Replace an item (it may be renamed)."""

        async def work(session: AsyncSession) -> Item:
            row = await find_row(session, name, viewer)
            found = await _existing(session, kind, row, item_name)
            if new.name != item_name and await items.find(session, kind, row.id, new.name):
                raise kind.duplicate(new.name, name)
            items.write(found, new)
            found.updated_at = utcnow()
            await session.flush()
            return items.item(found)

        return await self._in_transaction(work)

    async def remove(self, name: str, viewer: RequestContext, kind: Kind, item_name: str) -> None:
        """Delete an item of an unprotected namespace."""

        async def work(session: AsyncSession) -> None:
            row = await find_row(session, name, viewer)
            found = await _existing(session, kind, row, item_name)
            if row.protected:
                raise MetadefProtected(
                    f"Metadata definition {kind.value} {item_name} is protected and cannot be "
                    "deleted."
                )
            await session.delete(found)

        await self._in_transaction(work)

    # -- resource types ------------------------------------------------------------------

    async def resource_types(self) -> list[Association]:
        """Every resource type, by name."""

        async def work(session: AsyncSession) -> list[Association]:
            found = await session.scalars(
                select(MetadefResourceType).order_by(MetadefResourceType.name)
            )
            return [Association(t.name, None, None, t.created_at, t.updated_at) for t in found]

        return await self._in_transaction(work)

    async def associations(self, name: str, viewer: RequestContext) -> list[Association]:
        """A visible namespace's resource type associations."""

        async def work(session: AsyncSession) -> list[Association]:
            row = await find_row(session, name, viewer)
            return await resource_types.associations(session, row.id)

        return await self._in_transaction(work)

    async def associate(
        self, name: str, viewer: RequestContext, new: Association, limit: int | None
    ) -> Association:
        """Associate a resource type (created when unknown) with a visible namespace."""

        async def work(session: AsyncSession) -> Association:
            row = await find_row(session, name, viewer)
            await charge(session, row.owner, 1, limit)
            if await resource_types.association_row(session, row.id, new.name) is not None:
                raise MetadefDuplicate(
                    "The metadata definition resource-type association of resource-type="
                    f"{new.name} to namespace={name}, already exists."
                )
            added = await _associate(session, row.id, new, protected_type=False)
            return resource_types.association(added, new.name)

        return await self._in_transaction(work)

    async def deassociate(self, name: str, viewer: RequestContext, type_name: str) -> None:
        """Remove an association of an unprotected namespace."""

        async def work(session: AsyncSession) -> None:
            row = await find_row(session, name, viewer)
            found = await resource_types.association_row(session, row.id, type_name)
            if found is None:
                raise MetadefMissing(
                    "The metadata definition resource-type association of resource-type="
                    f"{type_name} to namespace={name}, was not found."
                )
            if row.protected:
                raise MetadefProtected(
                    f"Metadata definition resource-type-association {type_name} is protected "
                    "and cannot be deleted."
                )
            await session.delete(found)

        await self._in_transaction(work)


async def add_namespace(
    session: AsyncSession, namespace: Namespace, contents: Contents, protected_types: bool
) -> MetadefNamespace:
    """Insert a namespace and its contents (``protected_types``: types it brings are the
    shipped, protected kind)."""
    if await _taken(session, namespace.namespace):
        raise MetadefDuplicate(
            f"The metadata definition namespace={namespace.namespace} already exists."
        )
    row = MetadefNamespace(
        namespace=namespace.namespace,
        display_name=namespace.display_name,
        description=namespace.description,
        visibility=namespace.visibility,
        protected=namespace.protected,
        owner=namespace.owner,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as error:
        raise MetadefDuplicate(
            f"The metadata definition namespace={namespace.namespace} already exists."
        ) from error
    for kind, listed in (
        (Kind.OBJECT, contents.objects),
        (Kind.PROPERTY, contents.properties),
        (Kind.TAG, contents.tags),
    ):
        names = [i.name for i in listed]
        if len(set(names)) != len(names):
            raise MetadefDuplicate(f"A {kind.value} name appears twice in the namespace.")
        session.add_all(items.new_row(kind, row.id, i) for i in listed)
    for association in contents.associations:
        await _associate(session, row.id, association, protected_types)
    await session.flush()
    return row


async def _associate(
    session: AsyncSession, namespace_id: int, new: Association, protected_type: bool
) -> MetadefNamespaceResourceType:
    kind = await resource_types.type_named(session, new.name, protected_type)
    added = MetadefNamespaceResourceType(
        namespace_id=namespace_id,
        resource_type_id=kind.id,
        prefix=new.prefix,
        properties_target=new.properties_target,
    )
    session.add(added)
    await session.flush()
    return added


async def _existing(
    session: AsyncSession, kind: Kind, namespace: MetadefNamespace, name: str
) -> items.Row:
    found = await items.find(session, kind, namespace.id, name)
    if found is None:
        raise kind.missing(name, namespace.namespace)
    return found


async def _taken(session: AsyncSession, name: str) -> bool:
    found = await session.scalar(
        select(MetadefNamespace.id).where(MetadefNamespace.namespace == name)
    )
    return found is not None


async def _unprotected(
    session: AsyncSession, name: str, viewer: RequestContext
) -> MetadefNamespace:
    row = await find_row(session, name, viewer)
    if row.protected:
        raise MetadefProtected(
            f"Metadata definition namespace {name} is protected and cannot be deleted."
        )
    return row
