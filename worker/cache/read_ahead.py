"""Reading a store a few segments ahead of the fill that hashes and writes them.

A fill's thread reads a segment, writes it, then hashes it three ways; read in that same
thread, the store's link sits idle while the hashes run (a tenth of the time at 400 Mbit/s,
most of it on a fast store). A helper thread reading up to ``depth`` segments ahead keeps
the link busy meanwhile; memory stays bounded by those few segments.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from flows.sparse import Segment
from flows.threads import check_stop

#: Segments read ahead (8 MiB each by default).
DEPTH = 3
#: Seconds between two looks at the stop events while a side waits for the other.
_POLL = 0.1

_END = object()


def read_ahead(
    segments: Iterator[Segment], stop: threading.Event, depth: int = DEPTH
) -> Iterator[Segment]:
    """``segments``, read by a helper thread up to ``depth`` ahead of the caller (blocking).

    The helper's errors are raised here; ``stop`` (the caller's) or leaving the loop early
    stops the helper, which closes ``segments`` in its own thread (a store's generator may
    hold an image open). Returns only once the helper has ended.
    """
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    left = threading.Event()

    def offer(item: object) -> bool:
        while not (left.is_set() or stop.is_set()):
            try:
                ahead.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for segment in segments:
                if not offer(segment):
                    return
            offer(_END)
        except BaseException as error:  # handed to the caller
            offer(error)
        finally:
            close = getattr(segments, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=produce, name="cache-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            try:
                item = ahead.get(timeout=_POLL)
            except queue.Empty:
                check_stop(stop)
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Segment)
            yield item
    finally:
        left.set()
        helper.join()
