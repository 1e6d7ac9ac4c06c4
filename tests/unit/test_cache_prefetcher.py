"""The prefetcher: at once, once per image, retried after a failure, and stoppable."""

from __future__ import annotations

import asyncio

from worker.cache.prefetcher import Prefetcher


async def test_a_queued_image_is_fetched_at_once_and_once() -> None:
    fetched: list[str] = []
    done = asyncio.Event()

    async def fetch(image_id: str) -> None:
        fetched.append(image_id)
        done.set()

    prefetcher = Prefetcher(fetch, concurrency=2, retry_seconds=60)
    prefetcher.start()
    try:
        prefetcher.submit("a")
        prefetcher.submit("a")
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0.05)
        assert fetched == ["a"] and prefetcher.waiting() == 0
    finally:
        await prefetcher.close()


async def test_a_failed_fetch_is_tried_again_and_never_stops_the_workers() -> None:
    attempts: list[str] = []
    fetched = asyncio.Event()

    async def fetch(image_id: str) -> None:
        attempts.append(image_id)
        if image_id == "flaky" and attempts.count("flaky") < 3:
            raise OSError("the store is down")
        if image_id == "flaky":
            fetched.set()

    prefetcher = Prefetcher(fetch, concurrency=1, retry_seconds=0.01)
    prefetcher.start()
    try:
        prefetcher.submit("flaky")
        prefetcher.submit("steady")
        await asyncio.wait_for(fetched.wait(), 5)
        assert attempts.count("flaky") == 3 and "steady" in attempts
    finally:
        await prefetcher.close()


async def test_a_cancelled_image_is_no_longer_fetched_or_retried() -> None:
    started = asyncio.Event()

    async def fetch(image_id: str) -> None:
        started.set()
        await asyncio.sleep(60)

    prefetcher = Prefetcher(fetch, concurrency=1, retry_seconds=0.01)
    prefetcher.start()
    try:
        prefetcher.submit("slow")
        await asyncio.wait_for(started.wait(), 5)
        prefetcher.cancel("slow")
        await asyncio.sleep(0.05)
        assert prefetcher.waiting() == 0
    finally:
        await prefetcher.close()
