"""Running blocking work in a thread so that cancelling the caller really stops it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_local = threading.local()


class Stopped(Exception):
    """Raised inside blocking work that noticed its stop event (the caller was cancelled)."""


def check_stop(stop: threading.Event | None) -> None:
    """Raise :class:`Stopped` when ``stop`` is set; blocking loops call this per chunk."""
    if stop is not None and stop.is_set():
        raise Stopped("stopped: the task was cancelled")


def current_stop() -> threading.Event | None:
    """The stop event of the :func:`run_stoppable` work running in this thread, if any.

    For blocking helpers deep inside that work (a reader waiting for data) that were not
    handed the event but must not outlive a cancellation.
    """
    stop: threading.Event | None = getattr(_local, "stop", None)
    return stop


async def run_stoppable(
    work: Callable[[threading.Event], T],
    interrupt: Callable[[], None] | None = None,
    *,
    own_thread: str | None = None,
) -> T:
    """Run ``work(stop)`` in a worker thread; on cancellation set ``stop`` and wait for it.

    Waiting matters: a blocking writer that is abandoned would finish on its own later and,
    for instance, rename a file into place after the flow already reverted it. ``interrupt``,
    when given, is called right after ``stop`` is set, for work that may be blocked where it
    cannot look at the event (a socket read): it should wake that call up.

    The work runs in the event loop's default executor, shared with every other blocking
    call, unless ``own_thread`` names a thread of its own: for work that may wait on the
    outside world for minutes (a slow download), which must not hold a shared thread that
    hashing and file operations queue for.
    """
    stop = threading.Event()

    def call() -> T:
        _local.stop = stop
        try:
            return work(stop)
        finally:
            _local.stop = None

    loop = asyncio.get_running_loop()
    future = (
        _in_own_thread(loop, call, own_thread) if own_thread else loop.run_in_executor(None, call)
    )
    # Mark the outcome retrieved whatever happens to the caller: after a cancellation the
    # work's Stopped is expected, and asyncio would otherwise log it as never retrieved.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        if interrupt is not None:
            interrupt()
        await asyncio.wait([future])
        raise


def _in_own_thread(
    loop: asyncio.AbstractEventLoop, call: Callable[[], T], name: str
) -> asyncio.Future[T]:
    """Start ``call`` in a new daemon thread; its outcome arrives in the returned future."""
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = call()
        except BaseException as error:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, error)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
