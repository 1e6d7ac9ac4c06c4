"""Filtering, sorting and paging image lists (``GET /v2/images``), as Glance does.

Paging is keyset paging: the page after ``marker`` holds the images that sort strictly after
the marker image by the requested keys, with the image id as the final tie-breaker, so pages
never repeat or skip an image however many share a sort value. Nullable sort columns are
compared through a default (``''``, ``-1``, ``created_at``), in the ORDER BY and in the
marker condition alike, so NULLs sort the same way on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_

from flows.states import MemberStatus
from worker.db.models import Image, ImageProperty, ImageTag

Direction = Literal["asc", "desc"]
#: Comparison operators of Glance's time filters (``created_at=gt:2026-01-01T00:00:00Z``).
TimeOperator = Literal["gt", "gte", "lt", "lte", "eq", "neq"]


@dataclass(frozen=True, slots=True)
class _SortKey:
    expression: Any
    value: Callable[[Image], Any]


def _text(column: Any, attribute: str) -> _SortKey:
    return _SortKey(func.coalesce(column, ""), lambda image: getattr(image, attribute) or "")


def _number(column: Any, attribute: str) -> _SortKey:
    return _SortKey(func.coalesce(column, -1), lambda image: _or(getattr(image, attribute), -1))


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


#: The keys images may be sorted by, with how each is compared.
SORT_KEYS: Final[Mapping[str, _SortKey]] = {
    "name": _text(Image.name, "name"),
    "status": _SortKey(Image.status, lambda image: image.status),
    "container_format": _text(Image.container_format, "container_format"),
    "disk_format": _text(Image.disk_format, "disk_format"),
    "size": _number(Image.size, "size"),
    "virtual_size": _number(Image.virtual_size, "virtual_size"),
    "id": _SortKey(Image.id, lambda image: image.id),
    "created_at": _SortKey(Image.created_at, lambda image: image.created_at),
    "updated_at": _SortKey(
        func.coalesce(Image.updated_at, Image.created_at),
        lambda image: image.updated_at or image.created_at,
    ),
    "visibility": _SortKey(Image.visibility, lambda image: image.visibility),
    "owner": _text(Image.owner, "owner"),
    "min_disk": _SortKey(Image.min_disk, lambda image: image.min_disk),
    "min_ram": _SortKey(Image.min_ram, lambda image: image.min_ram),
}

#: Columns filtered by equality (``name=x``) or membership (``name=in:x,y``).
MATCH_COLUMNS: Final[Mapping[str, Any]] = {
    "id": Image.id,
    "name": Image.name,
    "status": Image.status,
    "owner": Image.owner,
    "disk_format": Image.disk_format,
    "container_format": Image.container_format,
}


@dataclass(frozen=True, slots=True)
class ImageQuery:
    """What ``GET /v2/images`` asked for, already checked."""

    limit: int = 25
    marker: str | None = None
    sort: tuple[tuple[str, Direction], ...] = (("created_at", "desc"),)
    #: ``public``, ``private``, ``shared``, ``community``, ``all``, or None for the default.
    visibility: str | None = None
    #: Shared images by membership status (``accepted`` by default, or ``all``).
    member_status: str = MemberStatus.ACCEPTED
    #: Column equality/membership filters, e.g. ``{"status": ("active",)}``.
    matches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Hidden images only (True) or visible ones only (False, the default).
    os_hidden: bool = False
    protected: bool | None = None
    size_min: int | None = None
    size_max: int | None = None
    #: Every one of these tags.
    tags: tuple[str, ...] = ()
    #: Extra properties that must have exactly these values.
    properties: Mapping[str, str] = field(default_factory=dict)
    #: Time filters on ``created_at`` / ``updated_at``.
    times: tuple[tuple[str, TimeOperator, datetime], ...] = ()


def apply_query(statement: Select[Any], query: ImageQuery, marker: Image | None) -> Select[Any]:
    """Filter, order, page and limit ``statement`` (a select of :class:`Image`)."""
    statement = statement.where(*_filters(query))
    keys = _ordering(query)
    statement = statement.order_by(
        *(
            key.expression.asc() if direction == "asc" else key.expression.desc()
            for key, direction in keys
        )
    )
    if marker is not None:
        statement = statement.where(_after(keys, marker))
    return statement.limit(query.limit)


def _filters(query: ImageQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Image.os_hidden.is_(query.os_hidden)]
    for column_name, values in query.matches.items():
        column = MATCH_COLUMNS[column_name]
        conditions.append(column == values[0] if len(values) == 1 else column.in_(values))
    if query.protected is not None:
        conditions.append(Image.protected.is_(query.protected))
    if query.size_min is not None:
        conditions.append(Image.size >= query.size_min)
    if query.size_max is not None:
        conditions.append(Image.size <= query.size_max)
    for tag in query.tags:
        conditions.append(
            exists().where(
                ImageTag.image_id == Image.id, ImageTag.value == tag, ImageTag.deleted.is_(False)
            )
        )
    for name, value in query.properties.items():
        conditions.append(
            exists().where(
                ImageProperty.image_id == Image.id,
                ImageProperty.name == name,
                ImageProperty.value == value,
                ImageProperty.deleted.is_(False),
            )
        )
    for attribute, operator, moment in query.times:
        conditions.append(_compare(SORT_KEYS[attribute].expression, operator, moment))
    return conditions


def _compare(expression: ColumnElement[Any], operator: TimeOperator, value: Any) -> Any:
    comparisons: dict[str, Callable[[], Any]] = {
        "gt": lambda: expression > value,
        "gte": lambda: expression >= value,
        "lt": lambda: expression < value,
        "lte": lambda: expression <= value,
        "eq": lambda: expression == value,
        "neq": lambda: expression != value,
    }
    return comparisons[operator]()


def _ordering(query: ImageQuery) -> list[tuple[_SortKey, Direction]]:
    keys = [(SORT_KEYS[name], direction) for name, direction in query.sort]
    if all(name != "id" for name, _ in query.sort):
        keys.append((SORT_KEYS["id"], query.sort[0][1] if query.sort else "desc"))
    return keys


def _after(keys: list[tuple[_SortKey, Direction]], marker: Image) -> ColumnElement[bool]:
    """Rows that sort strictly after ``marker`` by ``keys`` (lexicographic keyset)."""
    values = [key.value(marker) for key, _ in keys]
    alternatives = []
    for index, (key, direction) in enumerate(keys):
        equal = [keys[j][0].expression == values[j] for j in range(index)]
        beyond = (
            key.expression > values[index] if direction == "asc" else key.expression < values[index]
        )
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)
