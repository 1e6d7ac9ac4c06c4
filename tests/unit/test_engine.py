"""The flow engine: order, reverse revert, the failing step named."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from flows.engine import Flow, FlowFailed, Parallel


@dataclass
class Journal:
    events: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self, name: str, fail: BaseException | None = None) -> None:
        self.name = name
        self.fail = fail

    async def execute(self, ctx: Journal) -> None:
        ctx.events.append(f"execute {self.name}")
        if self.fail is not None:
            raise self.fail

    async def revert(self, ctx: Journal, error: BaseException) -> None:
        ctx.events.append(f"revert {self.name} ({type(error).__name__})")


class Timer:
    def __init__(self) -> None:
        self.results: list[tuple[str, str]] = []

    def step_finished(self, step: str, seconds: float, result: str) -> None:
        assert seconds >= 0
        self.results.append((step, result))


async def test_steps_run_in_order_and_are_timed() -> None:
    journal, timer = Journal(), Timer()
    await Flow("f", [Recorder("a"), Recorder("b")]).run(journal, timer)
    assert journal.events == ["execute a", "execute b"]
    assert timer.results == [("a", "success"), ("b", "success")]


async def test_failure_reverts_executed_steps_in_reverse_and_names_the_step() -> None:
    journal, timer = Journal(), Timer()
    flow = Flow(
        "f", [Recorder("a"), Recorder("b"), Recorder("c", ValueError("boom")), Recorder("d")]
    )
    with pytest.raises(FlowFailed) as caught:
        await flow.run(journal, timer)
    assert caught.value.step == "c"
    assert isinstance(caught.value.error, ValueError)
    assert journal.events == [
        "execute a",
        "execute b",
        "execute c",
        "revert c (ValueError)",
        "revert b (ValueError)",
        "revert a (ValueError)",
    ]
    assert ("c", "failure") in timer.results and ("a", "reverted") in timer.results


async def test_a_failing_revert_does_not_stop_the_others() -> None:
    class BadRevert(Recorder):
        async def revert(self, ctx: Journal, error: BaseException) -> None:
            raise RuntimeError("revert broke")

    journal, timer = Journal(), Timer()
    flow = Flow("f", [Recorder("a"), BadRevert("b"), Recorder("c", KeyError("x"))])
    with pytest.raises(FlowFailed):
        await flow.run(journal, timer)
    assert journal.events[-1] == "revert a (KeyError)"
    assert ("b", "revert_failed") in timer.results


async def test_cancellation_reverts_and_propagates() -> None:
    started = asyncio.Event()

    class Slow(Recorder):
        async def execute(self, ctx: Journal) -> None:
            ctx.events.append("execute slow")
            started.set()
            await asyncio.sleep(60)

    journal = Journal()
    task = asyncio.create_task(Flow("f", [Recorder("a"), Slow("slow")]).run(journal, Timer()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert journal.events == [
        "execute a",
        "execute slow",
        "revert slow (CancelledError)",
        "revert a (CancelledError)",
    ]


class Waiter(Recorder):
    """Executes until its event is set, then fails if asked to."""

    def __init__(self, name: str, gate: asyncio.Event, fail: BaseException | None = None) -> None:
        super().__init__(name, fail)
        self.gate = gate

    async def execute(self, ctx: Journal) -> None:
        ctx.events.append(f"start {self.name}")
        await self.gate.wait()
        await super().execute(ctx)


async def test_a_parallel_group_runs_together_and_reports_each_member() -> None:
    journal, timer = Journal(), Timer()
    gate_a, gate_b = asyncio.Event(), asyncio.Event()
    flow = Flow(
        "f",
        [Recorder("first"), Parallel([Waiter("a", gate_a), Waiter("b", gate_b)]), Recorder("z")],
    )
    run = asyncio.create_task(flow.run(journal, timer))
    await asyncio.sleep(0.05)
    assert journal.events == ["execute first", "start a", "start b"]
    gate_b.set()
    await asyncio.sleep(0.05)
    gate_a.set()
    await run
    assert timer.results == [
        ("first", "success"),
        ("b", "success"),
        ("a", "success"),
        ("z", "success"),
    ]


async def test_a_failing_member_cancels_the_others_and_every_member_is_reverted() -> None:
    journal, timer = Journal(), Timer()
    never, now = asyncio.Event(), asyncio.Event()
    now.set()
    flow = Flow(
        "f",
        [
            Recorder("first"),
            Parallel([Waiter("slow", never), Waiter("bad", now, ValueError("boom"))]),
            Recorder("z"),
        ],
    )
    with pytest.raises(FlowFailed) as caught:
        await flow.run(journal, timer)
    assert caught.value.step == "bad" and isinstance(caught.value.error, ValueError)
    assert ("bad", "failure") in timer.results and ("slow", "failure") in timer.results
    assert journal.events[-3:] == [
        "revert bad (ValueError)",
        "revert slow (ValueError)",
        "revert first (ValueError)",
    ]
    assert "execute z" not in journal.events
