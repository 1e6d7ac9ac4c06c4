"""A store write to kill: ``python -m tests.support.rbd_writer_main CONF IMAGE TASK``.

Writes ``IMAGE`` into the ``images`` pool of the cluster of ``CONF`` through the rbd store, as
task ``TASK``, from a reader whose data stops arriving after two chunks: the image stays open
(watched by this process's writer) until the process is killed. Prints ``writing`` once the
first chunk is in the image.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator

from flows.sparse import Segment
from flows.stores.rbd import RbdStore
from flows.stores.rbd_config import RbdStoreConfig

MiB = 1024 * 1024
SIZE = 16 * MiB


class StalledReader:
    """Two chunks of data, then nothing more, ever."""

    size = SIZE

    def close(self) -> None:
        """Nothing to release."""

    def segments(self, chunk_size: int = MiB) -> Iterator[Segment]:
        """One chunk; a second once the first was written (one write in flight); then wait."""
        yield Segment(0, MiB, b"\x01" * MiB)
        yield Segment(MiB, MiB, b"\x02" * MiB)
        print("writing", flush=True)
        while True:
            time.sleep(60)


async def main(conf: str, image: str, task: str) -> None:
    """Write until killed."""
    config = RbdStoreConfig(type="rbd", conf=conf, chunk_size=MiB, writes_in_flight=1)
    await RbdStore("victim", config).add(image, StalledReader(), task_id=task)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
