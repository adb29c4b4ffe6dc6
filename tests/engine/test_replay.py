"""The engine publishes a past run's events itself: replay, a resume's replay, and stopping."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from engine import log
from engine._errors import ProviderError
from engine._events import (
    CostUpdated,
    Event,
    ItemFinished,
    ItemsCounted,
    RunFailed,
    RunFinished,
    RunPaused,
    RunStarted,
    RunStopping,
)
from engine._paths import SUMMARY_NAME
from engine._replay import PAGE_RECORDS
from engine._results import Usage
from engine._run import Run
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import (
    ScriptedProvider,
    execute,
    in_background,
    items,
    make_run,
    until,
)

pytestmark = pytest.mark.anyio


def shown(result: object) -> tuple[object, ...]:
    """What a subscriber draws of a result (latency is not logged to the microsecond)."""
    r = result
    return (r.model, r.id, r.status, r.output, r.attempts, r.cost_usd, r.usage, r.error)  # type: ignore[attr-defined]


def finishes(events: list[Event]) -> list[tuple[object, ...]]:
    return [shown(e.result) for e in events if isinstance(e, ItemFinished)]


async def replayed(run: Run) -> tuple[RunFinished, list[Event]]:
    events: list[Event] = []
    finished = await Run.open(run.run_dir).replay([events.append])
    return finished, events


def fails_once_then_ok(failing: str) -> ScriptedProvider:
    calls: dict[str, int] = {}

    def script(request: CallRequest) -> CallResult | ProviderError:
        calls[request.prompt] = calls.get(request.prompt, 0) + 1
        if failing in request.prompt and calls[request.prompt] == 1:
            return ProviderError("bad_request", "not this time", status=400)
        return CallResult(f"echo {request.prompt}", Usage(10, 5))

    return ScriptedProvider(script)


async def test_a_past_run_replays_the_events_its_executions_published(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(30))
    provider = fails_once_then_ok("number 7")
    first, live = await execute(run, provider)
    assert first.failed == 1
    retried, live_retry = await execute(run, provider, only=[(run.config.models[0], "item-7")])

    finished, events = await replayed(run)

    assert finishes(events) == finishes(live) + finishes(live_retry)  # the later record wins
    # a replay tells what all the executions took: the first's (as its log says) and the retry's
    before = log.scan(run.log_path).elapsed_s - retried.elapsed_s
    assert finished == replace(retried, elapsed_s=finished.elapsed_s) and events[-1] == finished
    assert finished.elapsed_s >= retried.elapsed_s and before == pytest.approx(
        first.elapsed_s, abs=0.5
    )
    assert finished.state == "finished" and (finished.ok, finished.failed) == (30, 0)
    [started] = [e for e in events if isinstance(e, RunStarted)]
    assert started.state == "replaying" and started.already_done == 0
    assert started.run_id == run.run_id and started.models == run.config.models
    assert [e.total for e in events if isinstance(e, ItemsCounted)] == [30]
    costs = [e for e in events if isinstance(e, CostUpdated)]
    assert costs[-1].spent_usd == pytest.approx(finished.cost_usd)


async def test_a_killed_run_replays_its_outcome_from_the_log(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(12), max_items=5)
    capped, _ = await execute(run, ScriptedProvider())
    (run.run_dir / SUMMARY_NAME).unlink()  # as if killed before the summary was written

    finished, events = await replayed(run)

    assert finished.state == "capped" and (finished.ok, finished.remaining) == (5, 0)
    assert finished.cost_usd == capped.cost_usd and finished.input_tokens == capped.input_tokens
    assert not any(isinstance(e, ItemsCounted) for e in events)  # its total is unknown


async def test_replay_publishes_a_page_at_a_time_and_leaves_the_loop_free(
    tmp_path: Path,
) -> None:
    count = 2 * PAGE_RECORDS + 100
    run = make_run(tmp_path, items(count))
    await execute(run, ScriptedProvider())
    events: list[Event] = []
    ticks_at_page: list[int] = []
    ticks = 0

    def subscriber(event: Event) -> None:
        events.append(event)
        if isinstance(event, CostUpdated):
            ticks_at_page.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await Run.open(run.run_dir).replay([subscriber])
        tg.cancel_scope.cancel()

    pages = [0]
    for event in events:
        if isinstance(event, ItemFinished):
            pages[-1] += 1
        elif isinstance(event, CostUpdated):
            pages.append(0)
    assert sum(pages) == count and len(pages) - 1 >= 3
    assert max(pages) <= PAGE_RECORDS
    assert all(b > a for a, b in zip(ticks_at_page, ticks_at_page[1:], strict=False))


async def test_a_resume_can_replay_the_log_before_it_goes_on(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(20), max_items=8)
    await execute(run, ScriptedProvider())

    again = run.for_resume()
    _, events = await execute(again, ScriptedProvider(), replay=True)

    starts = [(i, e) for i, e in enumerate(events) if isinstance(e, RunStarted)]
    assert [(e.state, e.already_done) for _, e in starts] == [("replaying", 0), ("running", 0)]
    before = [e for e in events[: starts[1][0]] if isinstance(e, ItemFinished)]
    assert [e.result.id for e in before] == [f"item-{i}" for i in range(8)]
    assert sorted(e.result.id for e in events if isinstance(e, ItemFinished)) == sorted(
        f"item-{i}" for i in range(20)
    )


async def test_a_resume_without_replay_counts_the_logs_results_instead(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(20), max_items=8)
    await execute(run, ScriptedProvider())
    _, events = await execute(run.for_resume(), ScriptedProvider())
    [started] = [e for e in events if isinstance(e, RunStarted)]
    assert (started.state, started.resumed, started.already_done) == ("running", True, 8)
    assert sum(isinstance(e, ItemFinished) for e in events) == 12


async def test_stop_then_abort_publish_one_run_stopping_before_the_end(tmp_path: Path) -> None:
    provider = ScriptedProvider()
    provider.gate = anyio.Event()
    run = make_run(tmp_path, items(30), workers=3)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 3)
        run.stop()
        run.abort()
    finished, events = outcome[0]
    kinds = [type(e) for e in events]
    assert kinds.count(RunStopping) == 1
    assert kinds.index(RunStopping) < kinds.index(RunFinished)
    assert finished.state == "stopped"


async def test_a_run_that_stops_on_its_own_publishes_no_run_stopping(tmp_path: Path) -> None:
    def refuse(request: CallRequest) -> ProviderError:
        return ProviderError("auth", "bad key", status=401)

    run = make_run(tmp_path, items(10))
    finished, events = await execute(run, ScriptedProvider(refuse))
    assert finished.state == "failed"
    assert any(isinstance(e, RunFailed) for e in events)
    assert not any(isinstance(e, RunStopping) for e in events)


async def test_a_pause_and_stop_asked_before_the_start_follow_run_started(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, items(3))
    run.pause()
    run.stop()
    _, events = await execute(run, ScriptedProvider())
    kinds = [type(e) for e in events]
    assert kinds.index(RunStarted) < kinds.index(RunPaused) < kinds.index(RunStopping)
