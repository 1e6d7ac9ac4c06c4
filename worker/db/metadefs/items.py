"""A namespace's objects, properties and tags: named items, each kind in its own table."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.metadefs.models import MetadefObject, MetadefProperty, MetadefTag
from worker.db.metadefs.records import Item, MetadefDuplicate, MetadefMissing

Row = MetadefObject | MetadefProperty | MetadefTag


class Kind(enum.Enum):
    """What a namespace contains besides resource type associations."""

    OBJECT = "object"
    PROPERTY = "property"
    TAG = "tag"

    @property
    def model(self) -> type[Row]:
        """Its table."""
        return _MODELS[self]

    def missing(self, name: str, namespace: str) -> MetadefMissing:
        """Glance's words for an item that is not there."""
        if self is Kind.TAG:
            return MetadefMissing(
                f"The metadata definition tag with name={name} was not found in "
                f"namespace={namespace}."
            )
        return MetadefMissing(
            f"The metadata definition {self.value} with name={name} was not found in "
            f"namespace={namespace}."
        )

    def duplicate(self, name: str, namespace: str) -> MetadefDuplicate:
        """Glance's words for a name already taken."""
        noun = "metadata tag" if self is Kind.TAG else f"metadata definition {self.value}"
        return MetadefDuplicate(
            f"A {noun} with name={name} already exists in namespace={namespace}."
        )


_MODELS: dict[Kind, type[Row]] = {
    Kind.OBJECT: MetadefObject,
    Kind.PROPERTY: MetadefProperty,
    Kind.TAG: MetadefTag,
}


def new_row(kind: Kind, namespace_id: int, item: Item) -> Row:
    """A row holding ``item``."""
    row = kind.model(namespace_id=namespace_id, name=item.name)
    write(row, item)
    return row


def write(row: Row, item: Item) -> None:
    """Put ``item``'s name and definition in ``row``."""
    row.name = item.name
    definition = dict(item.definition)
    if isinstance(row, MetadefObject):
        row.description = definition.get("description")
        row.required = list(definition.get("required") or [])
        row.json_schema = dict(definition.get("properties") or {})
    elif isinstance(row, MetadefProperty):
        row.json_schema = definition


def item(row: Row) -> Item:
    """The row as an item."""
    definition: dict[str, Any] = {}
    if isinstance(row, MetadefObject):
        definition = {"required": list(row.required), "properties": dict(row.json_schema)}
        if row.description is not None:
            definition["description"] = row.description
    elif isinstance(row, MetadefProperty):
        definition = dict(row.json_schema)
    return Item(row.name, definition, row.created_at, row.updated_at)


async def rows(session: AsyncSession, kind: Kind, namespace_id: int) -> list[Row]:
    """Every item of ``kind`` in the namespace, by name."""
    model = kind.model
    found = await session.scalars(
        select(model).where(model.namespace_id == namespace_id).order_by(model.name)
    )
    return [row for row in found if isinstance(row, model)]


async def find(session: AsyncSession, kind: Kind, namespace_id: int, name: str) -> Row | None:
    """One item by name, or None."""
    model = kind.model
    found = await session.scalar(
        select(model).where(model.namespace_id == namespace_id, model.name == name)
    )
    return found if isinstance(found, model) else None


async def remove_all(session: AsyncSession, kind: Kind, namespace_id: int) -> None:
    """Delete every item of ``kind`` in the namespace."""
    model = kind.model
    await session.execute(delete(model).where(model.namespace_id == namespace_id))
