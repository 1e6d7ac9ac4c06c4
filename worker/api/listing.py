"""``GET /v2/images`` query parameters as Glance reads them, and the page's links."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast
from urllib.parse import urlencode

from multidict import MultiMapping

from flows.states import MemberStatus
from worker.api.errors import bad_request
from worker.config.settings import ApiSettings
from worker.db.listing import MATCH_COLUMNS, SORT_KEYS, Direction, ImageQuery, TimeOperator

#: Parameters read here; any other parameter filters on an extra property.
KNOWN = frozenset(
    {
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "member_status",
        "os_hidden",
        "protected",
        "size_min",
        "size_max",
        "tag",
        "created_at",
        "updated_at",
        *MATCH_COLUMNS,
    }
)
VISIBILITY_FILTERS = ("public", "private", "shared", "community", "all")
MEMBER_STATUSES = (*MemberStatus, "all")
TIME_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


def parse_image_query(params: MultiMapping[str], api: ApiSettings) -> ImageQuery:
    """Check every parameter; 400 naming the one that is wrong."""
    visibility = params.get("visibility")
    if visibility is not None and visibility not in VISIBILITY_FILTERS:
        raise bad_request(f"Invalid visibility value: {visibility}")
    member_status = params.get("member_status", MemberStatus.ACCEPTED)
    if member_status not in MEMBER_STATUSES:
        raise bad_request(f"Invalid status value: {member_status}")
    return ImageQuery(
        limit=_limit(params.get("limit"), api),
        marker=params.get("marker"),
        sort=_sort(params),
        visibility=visibility,
        member_status=member_status,
        matches={key: _values(params[key]) for key in MATCH_COLUMNS if params.get(key) is not None},
        os_hidden=_boolean(params, "os_hidden") or False,
        protected=_boolean(params, "protected"),
        size_min=_size(params, "size_min"),
        size_max=_size(params, "size_max"),
        tags=tuple(params.getall("tag", [])),
        properties={key: value for key, value in params.items() if key not in KNOWN},
        times=tuple(_times(params, "created_at") + _times(params, "updated_at")),
    )


def _limit(raw: str | None, api: ApiSettings) -> int:
    if raw is None:
        return api.default_page_size
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request("limit param must be an integer") from None
    if limit < 0:
        raise bad_request("limit param must be positive")
    return min(limit, api.max_page_size)


def _sort(params: MultiMapping[str]) -> tuple[tuple[str, Direction], ...]:
    keys, dirs, combined = (
        params.getall("sort_key", []),
        params.getall("sort_dir", []),
        params.get("sort"),
    )
    if combined is not None:
        if keys or dirs:
            raise bad_request("The 'sort' parameter cannot be used with sort_key or sort_dir.")
        pairs = []
        for item in combined.split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise bad_request("Give one sort_dir, or one per sort_key.")
        directions = dirs if len(dirs) > 1 else [dirs[0] if dirs else "desc"] * max(len(keys), 1)
        pairs = list(zip(keys or ["created_at"], directions, strict=False))
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise bad_request(f"Invalid sort key: {key}. It is not in {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise bad_request(f"Invalid sort direction: {direction}")
    return tuple((key, cast(Direction, direction)) for key, direction in pairs)


def _values(raw: str) -> tuple[str, ...]:
    """``x`` or Glance's ``in:x,y`` (with ``"a,b"`` quoting left out)."""
    if raw.startswith("in:"):
        values = tuple(v.strip() for v in raw[3:].split(",") if v.strip())
        if not values:
            raise bad_request(f"Invalid 'in' filter: {raw}")
        return values
    return (raw,)


def _boolean(params: Mapping[str, str], key: str) -> bool | None:
    raw = params.get(key)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad_request(f"Invalid value for {key}: {raw!r} (use true or false)")


def _size(params: Mapping[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{key} must be an integer, not {raw!r}") from None


def _times(params: MultiMapping[str], key: str) -> list[tuple[str, TimeOperator, datetime]]:
    found: list[tuple[str, TimeOperator, datetime]] = []
    for raw in params.getall(key, []):
        operator, _, moment = raw.partition(":")
        if operator not in TIME_OPERATORS or not moment:
            raise bad_request(
                f"Invalid {key} filter {raw!r}: use OPERATOR:TIME, e.g. gt:2026-01-01T00:00:00Z"
            )
        try:
            when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"Invalid time in {key} filter: {moment!r}") from None
        found.append((key, cast(TimeOperator, operator), when))
    return found


def page_links(
    query_string: Mapping[str, str] | MultiMapping[str], last_id: str | None
) -> dict[str, str]:
    """``first`` (the request as made) and ``next`` (when the page was full)."""
    items = [(k, v) for k, v in query_string.items() if k != "marker"]
    links = {"first": "/v2/images" + (f"?{urlencode(items)}" if items else "")}
    if last_id is not None:
        links["next"] = "/v2/images?" + urlencode([*items, ("marker", last_id)])
    return links
