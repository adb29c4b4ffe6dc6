"""What the app's screens need from the engine: the calls in flight and what they hold, a
run's elapsed time across executions, the worker count it ended with, every record of a
retried pair, and who holds a busy run."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import anyio
import pytest

from engine import find_result, find_results, log
from engine._errors import ProviderError, RunBusy
from engine._events import CostUpdated, Event, ItemFinished, RunStarted
from engine._results import Usage
from engine._run import Run
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import (
    ScriptedProvider,
    execute,
    gated,
    in_background,
    items,
    make_run,
    until,
)

pytestmark = pytest.mark.anyio

MODEL = "simulate:gpt-4o-mini"


async def test_cost_updates_say_what_the_calls_in_flight_hold(tmp_path: Path) -> None:
    """While paused with nothing out, no call is in flight and none holds money, though the
    items waiting at the pause gate keep their reservation."""
    provider = gated()
    run = make_run(tmp_path, items(20), workers=3, max_cost=1.0)
    events: list[Event] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(run.execute, [events.append], providers={MODEL: provider}))
        await until(lambda: provider.in_flight == 3)
        run.set_workers(3)  # publishes the money as it stands
        run.pause()
        assert provider.gate is not None
        provider.gate.set()
        await until(lambda: any(isinstance(e, CostUpdated) and e.spent_usd > 0 for e in events))
        run.stop()
    costs = [event for event in events if isinstance(event, CostUpdated)]
    while_out = next(cost for cost in costs if cost.calls_in_flight == 3)
    assert while_out.in_flight_usd > 0 and while_out.reserved_usd >= while_out.in_flight_usd
    paused = next(cost for cost in costs if cost.spent_usd > 0)
    assert paused.calls_in_flight == 0 and paused.in_flight_usd == 0
    assert paused.reserved_usd > 0  # the items at the pause gate
    assert len(provider.requests) == 3


async def test_a_resumed_runs_clock_goes_on_and_its_replay_tells_all_of_it(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(10), workers=2)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 2)
        run.stop()
        assert provider.gate is not None
        provider.gate.set()
    first, _ = outcome[0]
    assert first.state == "stopped" and first.elapsed_s > 0
    scanned = log.scan(run.log_path).elapsed_s
    assert scanned == pytest.approx(first.elapsed_s, abs=0.5) and scanned > 0
    again, events = await execute(Run.open(run.run_dir), ScriptedProvider())
    [started] = [event for event in events if isinstance(event, RunStarted)]
    assert started.elapsed_before_s == pytest.approx(scanned)
    replayed = await Run.open(run.run_dir).replay()
    assert replayed.elapsed_s == pytest.approx(scanned + again.elapsed_s)
    assert log.scan(run.log_path).elapsed_s == pytest.approx(replayed.elapsed_s, abs=0.5)


async def test_resume_keeps_the_worker_count_the_run_ended_with(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(30), workers=2)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 2)
        run.set_workers(5)
        await until(lambda: provider.in_flight == 5)
        run.stop()
        assert provider.gate is not None
        provider.gate.set()
    assert outcome[0][0].state == "stopped"
    assert Run.open(run.run_dir).for_resume().config.workers == 5
    assert Run.open(run.run_dir).for_resume(workers=3).config.workers == 3


async def test_every_record_of_a_retried_pair_is_found_oldest_first(tmp_path: Path) -> None:
    def failing(request: CallRequest) -> CallResult | ProviderError:
        if "number 3" in request.prompt:
            return ProviderError("bad_request", "no, not this one")
        return CallResult("fine", Usage(10, 5))

    run = make_run(tmp_path, items(6))
    await execute(run, ScriptedProvider(failing))
    await execute(run, ScriptedProvider(), only=[(MODEL, "item-3")])
    records = find_results(run, MODEL, "item-3")
    assert [record.status for record in records] == ["failed", "ok"]
    assert records[0].error is not None and records[0].error.kind == "bad_request"
    assert find_result(run, MODEL, "item-3") == records[-1]
    assert [r.status for r in find_results(run, MODEL, "item-2")] == ["ok"]
    assert find_results(run, MODEL, "item-9") == [] and find_result(run, MODEL, "item-9") is None


async def test_a_busy_run_says_who_holds_it(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(2))
    await execute(run, ScriptedProvider())
    with Run.open(run.run_dir).held():
        with pytest.raises(RunBusy) as refused:
            with Run.open(run.run_dir).held():
                pass
    holder = refused.value.holder
    assert holder is not None and holder.pid == os.getpid() and holder.is_this_process


class HoldsItemOne(ScriptedProvider):
    """Answers at once, except the call for ``item-1``, held until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()

    async def call(self, request: CallRequest) -> CallResult:
        if request.prompt.endswith("number 1"):
            await self.release.wait()
        return await super().call(request)


async def test_an_answer_is_written_and_published_without_waiting_for_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row says ``running`` until its result is logged: a result must not wait out the
    log's group interval for company while no other result is coming."""
    monkeypatch.setattr("engine._logtask.GROUP_INTERVAL_S", 3600.0)
    provider = HoldsItemOne()
    run = make_run(tmp_path, items(2), workers=2)
    events: list[Event] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(run.execute, [events.append], providers={MODEL: provider}))
        with anyio.fail_after(60):
            await until(lambda: any(isinstance(event, ItemFinished) for event in events))
        [finished] = [event for event in events if isinstance(event, ItemFinished)]
        assert finished.result.id == "item-0"  # item-1 is still being answered
        provider.release.set()
