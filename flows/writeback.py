"""Starting the disk write of what was just written, so the closing fsync waits for less.

A store file is written then fsynced. Without help, the kernel keeps the whole image dirty in
memory until that fsync, and only then does the disk start: the copy (CPU) and the disk write
run one after the other. ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` after each chunk starts
that chunk's writeback at once, without waiting for it, so the disk writes while the next
chunk is copied. The fsync still makes the file durable; this only moves work earlier.
Linux only; elsewhere (or if the call is refused) it does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

#: ``SYNC_FILE_RANGE_WRITE`` from <fcntl.h>: start writeback of dirty pages, do not wait.
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    # Imported here: only a process that writes a store pays for ctypes.
    import ctypes

    try:
        # The process's own symbols, the C library's among them (no search for it on disk).
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` of ``fd`` to disk now.

    Best effort and non-blocking (beyond queueing the I/O): durability still comes from the
    caller's fsync.
    """
    call = _sync_file_range()
    if call is not None and length > 0:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
