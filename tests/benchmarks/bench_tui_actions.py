"""How long the run screen's user actions take over a million rows: sort, find an id, and the
failures list following the run.

Builds a RunModel holding 1,000,000 rows (every 23rd failed, as in
bench_tui_table.py), mounts the item table at 120x40 under Pilot, and times each
action from the key's handler to the frame Textual paints after it (the paint is
timed as bench_tui_table.py does, escape sequences included):

  - sort: ``o`` from the unsorted table to "by cost", and from there to "by latency";
  - re-sort: a sorted table over a run still going takes a fresh snapshot now and
    then (``RESORT_S``); that frame, when a batch of 200 rows landed;
  - find: ``/`` with an exact id, with a part of an id found far on, and with a
    text no id contains (the worst case: every id is read);
  - failures: the open failures list's follow tick after a batch of 200 rows moved
    (one failed row among them ended ok), and opening the list (building it from the
    failed results, as ``F`` does once the log was read).

Prints the median and p95 of each, wall and CPU time (on a busy shared machine the wall
clock counts time spent waiting for a core).

    python -m tests.benchmarks.bench_tui_actions [--rows 1000000] [--repeats 20]

Target: each under 100 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from textual.pilot import Pilot

from engine._events import ItemFinished, RunStarted
from engine._results import ItemResult
from tests.benchmarks.bench_tui_table import (
    MODELS,
    SIZE,
    Feed,
    PaintClock,
    _history,
    _result,
)
from tests.tui._host import HostApp, TableApp
from tui.model import RunModel
from tui.screens.failures import FailuresScreen
from tui.widgets.failure_list import FailureList
from tui.widgets.item_table import ItemTable

TARGET_MS = 100.0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, samples: list[tuple[float, float]]) -> None:
    wall = [s[0] * 1000 for s in samples]
    cpu = [s[1] * 1000 for s in samples]
    p95 = _p95(wall)
    verdict = "ok" if p95 <= TARGET_MS else f"MISSED by {p95 - TARGET_MS:.0f} ms"
    print(
        f"{name:<44} p50 {statistics.median(wall):7.1f} ms  p95 {p95:7.1f} ms  "
        f"(cpu p50 {statistics.median(cpu):6.1f}, p95 {_p95(cpu):6.1f})  {verdict}"
    )


async def timed(
    pilot: Pilot[None], clock: PaintClock, action: Callable[[], object]
) -> tuple[float, float]:
    """Wall and CPU time of ``action`` plus the paint of the frame after it."""
    clock.take()
    clock.time(action)
    await pilot.pause()
    return clock.take()


async def timed_async(
    pilot: Pilot[None], clock: PaintClock, action: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    clock.take()
    wall, cpu = time.perf_counter(), time.thread_time()
    await action()
    clock.wall += time.perf_counter() - wall
    clock.cpu += time.thread_time() - cpu
    await pilot.pause()
    return clock.take()


def build(rows: int) -> RunModel:
    model = RunModel(clock=time.monotonic)
    model.apply_all([RunStarted("bench", "/tmp/bench", MODELS, False, 0)])
    for chunk in _history(rows, running=2_000):
        model.apply_all(chunk)
    return model


async def table_actions(model: RunModel, repeats: int) -> None:
    app = TableApp(model)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.pause()
        clock = PaintClock(app, app.screen)
        by_cost, by_latency = [], []
        for _ in range(repeats):
            table.sort_key = None
            await pilot.pause()
            by_cost.append(await timed(pilot, clock, table.action_cycle_sort))
            by_latency.append(await timed(pilot, clock, table.action_cycle_sort))
        report("sort: o, unsorted -> by cost", by_cost)
        report("sort: o, by cost -> by latency", by_latency)

        feed, resorts = Feed(model), []
        table.sort_key = "cost"
        for _ in range(repeats):
            app.model.apply_all(feed.batch())
            table._sorted_at = (-1, -float("inf"))  # the snapshot is due, as every RESORT_S
            resorts.append(await timed(pilot, clock, table.refresh_rows))
        report("re-sort of a sorted table, a batch landed", resorts)
        table.sort_key = None
        await pilot.pause()

        store = model.store
        exact = store[len(store) * 3 // 4].id
        far = exact.removeprefix("ticket-")  # a part: no exact match, found by scanning
        for name, text in (
            ("find: exact id", exact),
            ("find: part of an id, 3/4 of the way on", far),
            ("find: no id contains it", "no-such-id"),
        ):
            samples = []
            for _ in range(repeats):
                table.move_cursor(0)
                await pilot.pause()
                samples.append(await timed(pilot, clock, lambda text=text: table.jump_to(text)))
            report(name, samples)


async def failures_actions(model: RunModel, repeats: int) -> None:
    store = model.store
    failed = [_result(position) for position in store.view("failed")]
    print(f"{len(failed):,} failed rows of {len(store):,}")

    async def reload() -> list[ItemResult]:
        return failed

    screen = FailuresScreen(failed, store=store, reload=reload)
    app = HostApp(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        clock = PaintClock(app, screen)
        feed, follows = Feed(model), []
        for n in range(repeats):
            events = feed.batch()
            # one failed row is retried and ends ok: it leaves the list
            position = store.view("failed")[n]
            ok = _result(position + 1 if (position + 1) % 23 else position + 2)
            row = store[position]
            events.append(ItemFinished(_ok_for(ok, row.id, row.model)))
            model.apply_all(events)
            follows.append(await timed_async(pilot, clock, screen._follow))
        report("failures: follow tick, a batch moved", follows)

        opens = []
        for _ in range(repeats):
            opens.append(await timed(pilot, clock, lambda: FailureList(failed)))
        report("failures: build the list (F, log read)", opens)


def _ok_for(result: ItemResult, id: str, model: str) -> ItemResult:
    return replace(result, id=id, model=model, status="ok", error=None)


async def main(rows: int, repeats: int) -> None:
    started = time.perf_counter()
    model = build(rows)
    print(f"built {len(model.store):,} rows in {time.perf_counter() - started:.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    await table_actions(model, repeats)
    await failures_actions(model, repeats)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeats))
