"""What every format reader shares: a bounded reader over the staged file, and its result."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from flows.errors import SafetyRefusal

#: The most any reader reads in one call (a header field can never make us read more).
MAX_READ = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Detected:
    """A format found in the bits, with its virtual size and notable facts."""

    format: str
    virtual_size: int
    facts: dict[str, str] = field(default_factory=dict)


class Bits:
    """Random access to the staged file with bounded reads (never the whole file)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the file)."""
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        return os.pread(self._fd, min(length, MAX_READ), offset)

    def exact(self, offset: int, length: int, what: str, fmt: str) -> bytes:
        """Exactly ``length`` bytes, or a ``malformed`` refusal naming what is cut off."""
        data = self.read(offset, length)
        if len(data) != length:
            raise malformed(fmt, f"{what} is cut off (the file is {self.size} bytes)")
        return data

    def unpack(self, fmt: str, offset: int, image_format: str, what: str) -> tuple[int, ...]:
        """``struct.unpack`` of the bytes at ``offset``."""
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.exact(offset, size, what, image_format))


def malformed(fmt: str, detail: str) -> SafetyRefusal:
    """A refusal for a truncated or inconsistent header."""
    return SafetyRefusal("malformed", f"{fmt} image is malformed: {detail}")
