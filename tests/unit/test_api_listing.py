"""``GET /v2/images`` parameters: defaults, Glance's sort and filter forms, links, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict, MultiDictProxy

from worker.api.errors import ApiError
from worker.api.listing import page_links, parse_image_query
from worker.config.settings import ApiSettings

API = ApiSettings(default_page_size=25, max_page_size=100)


def parse(*pairs: tuple[str, str]):  # type: ignore[no-untyped-def]
    return parse_image_query(MultiDictProxy(MultiDict(pairs)), API)


def test_defaults_are_glances() -> None:
    query = parse()
    assert (query.limit, query.sort, query.visibility, query.os_hidden) == (
        25,
        (("created_at", "desc"),),
        None,
        False,
    )
    assert query.member_status == "accepted"


def test_sort_forms_and_limit_cap() -> None:
    assert parse(("sort_key", "name"), ("sort_dir", "asc")).sort == (("name", "asc"),)
    assert parse(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")).sort == (
        ("name", "asc"),
        ("size", "asc"),
    )
    assert parse(("sort", "name:asc,created_at")).sort == (
        ("name", "asc"),
        ("created_at", "desc"),
    )
    assert parse(("limit", "5000")).limit == 100


def test_filters() -> None:
    query = parse(
        ("name", "cirros"),
        ("status", "in:active,queued"),
        ("tag", "a"),
        ("tag", "b"),
        ("os_hidden", "True"),
        ("architecture", "x86_64"),
        ("created_at", "gt:2026-01-01T00:00:00Z"),
        ("size_min", "10"),
    )
    assert query.matches == {"name": ("cirros",), "status": ("active", "queued")}
    assert query.tags == ("a", "b")
    assert query.os_hidden is True
    assert query.properties == {"architecture": "x86_64"}
    assert query.times == (("created_at", "gt", datetime(2026, 1, 1, tzinfo=UTC)),)
    assert query.size_min == 10


@pytest.mark.parametrize(
    "pairs",
    [
        (("limit", "x"),),
        (("limit", "-1"),),
        (("sort_key", "colour"),),
        (("sort_dir", "sideways"),),
        (("sort", "name:asc"), ("sort_key", "name")),
        (("visibility", "galaxy"),),
        (("member_status", "maybe"),),
        (("os_hidden", "perhaps"),),
        (("created_at", "around:2026"),),
        (("created_at", "gt:yesterday"),),
        (("size_min", "big"),),
        (("status", "in:"),),
    ],
)
def test_bad_parameters_are_400(pairs: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ApiError) as caught:
        parse(*pairs)
    assert caught.value.status == 400


def test_links_keep_the_query_and_move_the_marker() -> None:
    params = MultiDictProxy(MultiDict([("limit", "2"), ("marker", "old"), ("sort_key", "name")]))
    links = page_links(params, "last-id")
    assert links["first"] == "/v2/images?limit=2&sort_key=name"
    assert links["next"] == "/v2/images?limit=2&sort_key=name&marker=last-id"
    assert "next" not in page_links(params, None)
