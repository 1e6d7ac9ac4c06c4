"""run_stoppable: blocking work in a thread that a cancellation really stops."""

from __future__ import annotations

import asyncio
import threading

import pytest

from flows.threads import Stopped, check_stop, run_stoppable


async def test_own_thread_runs_outside_the_shared_executor() -> None:
    def work(stop: threading.Event) -> str:
        return threading.current_thread().name

    assert await run_stoppable(work, own_thread="slow-source") == "slow-source"
    assert (await run_stoppable(work)).startswith("asyncio_")


@pytest.mark.parametrize("own_thread", [None, "own"])
async def test_the_work_error_reaches_the_caller(own_thread: str | None) -> None:
    def work(stop: threading.Event) -> None:
        raise ValueError("bad bytes")

    with pytest.raises(ValueError, match="bad bytes"):
        await run_stoppable(work, own_thread=own_thread)


@pytest.mark.parametrize("own_thread", [None, "own"])
async def test_cancelling_interrupts_and_waits_for_the_work(own_thread: str | None) -> None:
    # The work is blocked where it cannot look at its stop event; only the interrupt wakes it.
    wake = threading.Event()
    started = threading.Event()
    ended: list[str] = []

    def work(stop: threading.Event) -> None:
        started.set()
        wake.wait(60)
        try:
            check_stop(stop)
        except Stopped:
            ended.append("stopped")
            raise

    running = asyncio.create_task(run_stoppable(work, wake.set, own_thread=own_thread))
    await asyncio.to_thread(started.wait, 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 30)
    # The caller saw the cancellation only once the work had ended.
    assert ended == ["stopped"]
