"""One read shared by several consumers: each gets every segment, the source is read once,
memory stays bounded, a slow consumer holds the others back, a closed one does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.fanout import FanOut
from flows.sparse import Segment, SparseFileReader
from flows.threads import Stopped, run_stoppable
from tests.support.images import MiB, make_sparse_raw


class CountingSource:
    """An ImageReader of ``count`` 1 MiB data segments that counts what was read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.read = 0
        self.iterations = 0

    @property
    def size(self) -> int:
        return self.count * MiB

    def segments(self, chunk_size: int = MiB) -> Iterator[Segment]:
        self.iterations += 1
        for index in range(self.count):
            self.read += 1
            yield Segment(index * MiB, MiB, bytes([index % 251]) * MiB)

    def close(self) -> None:
        return None


def consume(fanout: FanOut, name: str, out: dict[str, list[int]], delay: float = 0.0) -> None:
    got = out.setdefault(name, [])
    for segment in fanout.reader(name).segments():
        got.append(segment.offset)
        time.sleep(delay)


def test_every_consumer_gets_every_segment_from_one_read(tmp_path: Path) -> None:
    path = tmp_path / "d.raw"
    make_sparse_raw(path, 32 * MiB, [(0, 3 * MiB), (20 * MiB, 2 * MiB)])
    with SparseFileReader(path) as source:
        expected = [(s.offset, s.length, s.data) for s in source.segments(MiB)]
    with SparseFileReader(path) as source:
        fanout = FanOut(source, ["a", "b", "c"], MiB)
        results: dict[str, list[tuple[int, int, bytes | None]]] = {}

        def take(name: str) -> None:
            results[name] = [(s.offset, s.length, s.data) for s in fanout.reader(name).segments()]

        threads = [threading.Thread(target=take, args=(n,)) for n in "abc"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == {"a": expected, "b": expected, "c": expected}


def test_a_slow_consumer_holds_the_others_back_within_the_depth() -> None:
    source = CountingSource(40)
    fanout = FanOut(source, ["fast", "slow"], MiB, depth=4)
    seen: dict[str, list[int]] = {}
    most_buffered = 0
    slow = threading.Thread(target=consume, args=(fanout, "slow", seen, 0.01))
    fast = threading.Thread(target=consume, args=(fanout, "fast", seen))
    slow.start()
    fast.start()
    while slow.is_alive() or fast.is_alive():
        most_buffered = max(most_buffered, fanout.buffered())
        lead = len(seen.get("fast", [])) - len(seen.get("slow", []))
        assert lead <= 4 + 1
        time.sleep(0.001)
    assert source.read == 40 and source.iterations == 1
    assert len(seen["fast"]) == len(seen["slow"]) == 40
    assert most_buffered <= 4 + 1


def test_a_closed_consumer_no_longer_holds_the_others() -> None:
    source = CountingSource(20)
    fanout = FanOut(source, ["writer", "failed", "never_started"], MiB, depth=2)
    fanout.reader("never_started").close()
    seen: dict[str, list[int]] = {}

    def fail_early() -> None:
        reader = fanout.reader("failed")
        for segment in reader.segments():
            if segment.offset >= 2 * MiB:
                reader.close()  # its write failed: the store step closes its reader
                return

    failing = threading.Thread(target=fail_early)
    failing.start()
    consume(fanout, "writer", seen)
    failing.join(5)
    assert len(seen["writer"]) == 20


async def test_a_waiting_consumer_stops_when_its_work_is_cancelled() -> None:
    import asyncio

    fanout = FanOut(CountingSource(20), ["waiting", "stalled"], MiB, depth=2)
    started = threading.Event()

    def work(stop: threading.Event) -> None:
        started.set()
        for _ in fanout.reader("waiting").segments():
            pass

    task = asyncio.create_task(run_stoppable(work))
    await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.2)  # it is now waiting for "stalled", which never reads
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    with pytest.raises(Stopped):
        for _ in fanout.reader("waiting").segments():
            pass
