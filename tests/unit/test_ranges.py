"""Range on downloads: Glance's answers for single, open, suffix, multiple and bad ranges."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from worker.api.errors import ApiError
from worker.api.ranges import ByteRange, requested_range


def _range(header: str | None, size: int = 100) -> ByteRange | None:
    headers = {} if header is None else {"Range": header}
    return requested_range(make_mocked_request("GET", "/", headers=headers), size)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=90-", 90, 100),
        ("bytes=95-500", 95, 100),
        ("bytes=-10", 90, 100),
        ("bytes=-500", 0, 100),
        ("bytes=99-99", 99, 100),
    ],
)
def test_satisfiable_ranges(header: str, start: int, end: int) -> None:
    wanted = _range(header)
    assert wanted == ByteRange(start, end, 100)
    assert wanted.content_range() == f"bytes {start}-{end - 1}/100"


def test_no_range_is_the_whole_image() -> None:
    assert _range(None) is None


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=-0", "bytes=5-2", "bytes=a-b", "items=0-1"]
)
def test_unsatisfiable_or_unreadable_ranges_are_416(header: str) -> None:
    with pytest.raises(ApiError) as refused:
        _range(header)
    assert refused.value.status == 416
    assert refused.value.headers["Content-Range"] == "bytes */100"


def test_several_ranges_are_refused_as_glance_does() -> None:
    with pytest.raises(ApiError) as refused:
        _range("bytes=0-1,5-6")
    assert refused.value.status == 400 and "multiple ranges" in refused.value.message
