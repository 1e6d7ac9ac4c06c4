"""``Range`` on downloads, as Glance answers it (RFC 9110 single byte ranges).

``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` are served with 206 and ``Content-Range``; an
end past the image is cut to it. Several ranges at once are refused (400, as Glance does);
a range that cannot be satisfied, or that does not parse, is a 416 with
``Content-Range: bytes */SIZE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from worker.api.errors import ApiError, bad_request

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``[start, end)`` of an image of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Bytes in the range."""
        return self.end - self.start

    def content_range(self) -> str:
        """The ``Content-Range`` of a 206 answer."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def requested_range(request: web.Request, size: int) -> ByteRange | None:
    """The range the request asks for (None: the whole image); 400/416 when it is wrong."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if "," in header:
        raise bad_request(
            "Requests with multiple ranges are not supported. You may make multiple "
            "single-range requests instead."
        )
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise _unsatisfiable(size, f"Invalid Range header {header!r}.")
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            raise _unsatisfiable(size, "A suffix range of 0 bytes selects nothing.")
        return ByteRange(max(size - length, 0), size, size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size:
        raise _unsatisfiable(
            size,
            f"Invalid start position in Range header. Start position MUST be in the inclusive "
            f"range [0, {size - 1}].",
        )
    if end <= start:
        raise _unsatisfiable(size, f"Invalid Range header {header!r}: it ends before it starts.")
    return ByteRange(start, end, size)


def _unsatisfiable(size: int, message: str) -> ApiError:
    return ApiError(416, message, headers={"Content-Range": f"bytes */{size}"})
