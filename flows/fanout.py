"""One read of the data, shared by several store writers that run at the same time.

A :class:`FanOut` turns one :class:`~flows.sparse.ImageReader` into one reader per consumer.
Each segment is read from the source once, by whichever consumer needs it first, and kept
until every consumer still attached has taken it. Memory stays bounded: no consumer may run
more than ``depth`` segments ahead of the slowest attached one, so a slow store holds the
others back instead of letting data pile up. A consumer that is closed (its store finished
or failed) is detached and holds nobody back any more.

Everything here blocks: consumers iterate from worker threads (the stores' writers), never on
the event loop. A consumer waiting for the others notices its thread's stop event
(:func:`flows.threads.current_stop`), so cancelling a store's write never leaves it stuck.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator

from flows.sparse import DEFAULT_CHUNK_SIZE, ImageReader, Segment
from flows.threads import Stopped, check_stop, current_stop

#: Segments the fastest consumer may be ahead of the slowest (8 MiB each by default).
DEFAULT_DEPTH = 4
#: Seconds between checks of the stop event while a consumer waits.
_POLL = 0.1


class FanOut:
    """Shares one sequential read of ``source`` among the consumers named ``names``."""

    def __init__(
        self,
        source: ImageReader,
        names: Iterable[str],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        self._source = source
        self._chunk_size = chunk_size
        self._depth = max(1, depth)
        self._changed = threading.Condition()
        self._segments: Iterator[Segment] | None = None
        #: Segments still wanted by some consumer; ``_first`` is the index of the oldest.
        self._buffer: deque[Segment] = deque()
        self._first = 0
        self._ended = False
        self._error: BaseException | None = None
        #: Index of the next segment each attached consumer will take.
        self._positions = dict.fromkeys(names, 0)
        self._readers = {name: FanOutReader(self, name) for name in self._positions}

    @property
    def size(self) -> int:
        """The size of the data every consumer receives."""
        return self._source.size

    def reader(self, name: str) -> FanOutReader:
        """The reader of consumer ``name``."""
        return self._readers[name]

    def buffered(self) -> int:
        """Segments held right now (for tests: never more than ``depth`` + 1)."""
        with self._changed:
            return len(self._buffer)

    # -- used by FanOutReader ------------------------------------------------------------

    def _take(self, name: str, index: int) -> Segment | None:
        """Segment ``index`` for ``name``; None at the end. Waits while too far ahead."""
        with self._changed:
            while True:
                check_stop(current_stop())
                if name not in self._positions:
                    raise Stopped(f"the reader of {name} was closed")
                if index < self._first + len(self._buffer):
                    segment = self._buffer[index - self._first]
                    self._positions[name] = index + 1
                    self._trim()
                    return segment
                if self._error is not None:
                    raise self._error
                if self._ended:
                    return None
                if index - min(self._positions.values()) < self._depth:
                    self._read_next()
                    continue
                self._changed.wait(_POLL)

    def _read_next(self) -> None:
        """Read one more segment from the source into the buffer (the lock is held)."""
        try:
            if self._segments is None:
                self._segments = self._source.segments(self._chunk_size)
            self._buffer.append(next(self._segments))
        except StopIteration:
            self._ended = True
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._changed.notify_all()

    def _trim(self) -> None:
        """Drop segments every attached consumer has taken; wake the ones waiting."""
        slowest = min(self._positions.values(), default=self._first + len(self._buffer))
        while self._buffer and self._first < slowest:
            self._buffer.popleft()
            self._first += 1
        self._changed.notify_all()

    def _detach(self, name: str) -> None:
        with self._changed:
            if self._positions.pop(name, None) is not None:
                self._trim()


class FanOutReader:
    """One consumer's :class:`~flows.sparse.ImageReader` view of a :class:`FanOut`.

    It yields the source's segments whatever ``chunk_size`` it is asked for (every writer
    takes segments of any length). Iterate it once; close it when the write ends.
    """

    def __init__(self, fanout: FanOut, name: str) -> None:
        self._fanout = fanout
        self.name = name

    @property
    def size(self) -> int:
        """The size of the data."""
        return self._fanout.size

    def segments(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Segment]:
        """Yield the shared segments in order (blocking; see :class:`FanOut`)."""
        index = 0
        try:
            while (segment := self._fanout._take(self.name, index)) is not None:
                yield segment
                index += 1
        finally:
            # A consumer that stops early (its write failed) must not hold the others back.
            self.close()

    def close(self) -> None:
        """Detach: the other consumers no longer wait for this one."""
        self._fanout._detach(self.name)
