"""How long the item table takes to paint a frame over a million rows while events pour in.

Builds a RunModel holding 1,000,000 rows, mounts an ItemTable at 120x40 under
Pilot, and runs frames the way the run screen does: fold a batch of 200 row
updates (100 rows finish, 100 start), call ``refresh_rows()``, let Textual
paint. A frame's paint time is ``refresh_rows()`` plus every compositor
refresh Textual runs before the next batch, including turning the update into
the escape sequences a terminal would get (headless apps skip that step, so
the benchmark does it). Two scenes: following the tail (every frame scrolls,
so every visible line is new) and parked in the middle of the run with a few
of the 200 updates landing on visible rows. A last scene times the whole run
screen's tick (fold the batch from the EventBuffer, sync every panel and the
table) plus its paint, following the tail.

    python tests/benchmarks/bench_tui_table.py [--rows 1000000] [--frames 300]

Target (issue 4): p95 paint <= 10 ms at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen

from engine._events import Event, ItemFinished, ItemStarted, RunStarted
from engine._results import ErrorInfo, ItemResult, Usage
from tests.tui._host import TableApp
from tui.app import make_app
from tui.model import EventBuffer, RunModel
from tui.screens.run import RunScreen
from tui.widgets.item_table import ItemTable

MODELS = ("openai:gpt-4o-mini", "anthropic:claude-3-5-haiku")
OUTPUT = "Category: billing. The customer asks for a refund of the annual plan.\nConfidence: high"
SIZE = (120, 40)
BATCH = 200


def _result(n: int) -> ItemResult:
    failed = n % 23 == 0
    return ItemResult(
        id=f"ticket-{n // len(MODELS):07d}",
        model=MODELS[n % len(MODELS)],
        status="failed" if failed else "ok",
        line=n,
        fields={},
        output=None if failed else OUTPUT,
        usage=Usage(412 + n % 97, 23 + n % 11),
        cost_usd=0.0 if failed else 0.000213,
        latency_ms=480.0 + n % 500,
        attempts=3 if failed else 1,
        error=ErrorInfo("timeout", "no answer within 60 s") if failed else None,
    )


def _started(n: int) -> ItemStarted:
    return ItemStarted(f"ticket-{n // len(MODELS):07d}", MODELS[n % len(MODELS)], 1)


def _history(rows: int, running: int) -> Iterator[list[Event]]:
    """Chunks of events leaving ``rows`` rows, the last ``running`` of them in flight."""
    chunk = 20_000
    for start in range(0, rows, chunk):
        events: list[Event] = []
        for n in range(start, min(rows, start + chunk)):
            events.append(_started(n))
            if n < rows - running:
                events.append(ItemFinished(_result(n)))
        yield events


class Stopwatch:
    """Wall time and this thread's CPU time: on a busy shared machine the wall clock also
    counts the time the process waited for a core, which is not what a frame costs."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def time(self, work: Callable[[], object]) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        work()
        self.wall += time.perf_counter() - wall
        self.cpu += time.thread_time() - cpu

    def take(self) -> tuple[float, float]:
        spent = (self.wall, self.cpu)
        self.wall = self.cpu = 0.0
        return spent


class PaintClock(Stopwatch):
    """Times every compositor refresh and renders each update as a terminal would get it."""

    def __init__(self, app: App[Any], screen: Screen[Any]) -> None:
        super().__init__()
        refresh = screen._compositor_refresh
        display = app._display

        def timed_refresh() -> None:
            self.time(refresh)

        def rendering_display(screen: Screen[Any], renderable: Any) -> None:
            if renderable is not None:
                renderable.render_segments(app.console)
            display(screen, renderable)

        screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
        app._display = rendering_display  # type: ignore[method-assign]


def _summary(name: str, samples: list[tuple[float, float]]) -> str:
    lines = []
    for clock, index in (("wall", 0), ("cpu", 1)):
        ms = sorted(sample[index] * 1000 for sample in samples)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        lines.append(
            f"{name + ', ' + clock:<32} p50 {statistics.median(ms):6.2f} ms   "
            f"p95 {p95:6.2f} ms   max {ms[-1]:7.2f} ms   (n={len(ms)})"
        )
    return "\n".join(lines)


class Feed:
    """Batches like a busy run's: half the rows in flight finish, as many new ones start."""

    def __init__(self, model: RunModel) -> None:
        self.in_flight: deque[int] = deque(model.store.view("active"))
        self.next_n = len(model.store)

    def batch(self, on_screen: Sequence[int] = ()) -> list[Event]:
        """``BATCH`` events; rows at positions ``on_screen`` get a new result too."""
        events: list[Event] = [ItemFinished(_result(position)) for position in on_screen]
        while len(events) < BATCH // 2:
            events.append(ItemFinished(_result(self.in_flight.popleft())))
        while len(events) < BATCH:
            events.append(_started(self.next_n))
            self.in_flight.append(self.next_n)
            self.next_n += 1
        return events


async def _table_scene(
    pilot: Pilot[None], model: RunModel, clock: PaintClock, frames: int, *, follow: bool
) -> tuple[list[tuple[float, float]], list[float]]:
    """Frames of the table alone: fold a batch (timed apart), then refresh_rows + paint."""
    table = pilot.app.query_one(ItemTable)
    feed = Feed(model)
    paints: list[tuple[float, float]] = []
    folds: list[float] = []
    for _ in range(frames + 1):
        top = round(table.scroll_y)
        on_screen = () if follow else [model.store.view("all")[top + k] for k in range(0, 30, 3)]
        events = feed.batch(on_screen)
        started = time.perf_counter()
        model.apply_all(events)
        folds.append(time.perf_counter() - started)
        clock.take()
        clock.time(table.refresh_rows)
        await pilot.pause()
        paints.append(clock.take())
    return paints[1:], folds  # the first frame after a scene change repaints everything cold


async def _screen_scene(
    pilot: Pilot[None], model: RunModel, events: EventBuffer, clock: PaintClock, frames: int
) -> list[tuple[float, float]]:
    """Frames of the whole run screen: the engine's batch lands in the buffer, the screen's
    tick folds it, syncs every panel and the table, and Textual paints."""
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    feed = Feed(model)
    frames_spent: list[tuple[float, float]] = []
    for _ in range(frames + 1):
        for event in feed.batch():
            events(event)
        clock.take()
        clock.time(screen.pump)
        await pilot.pause()
        frames_spent.append(clock.take())
    return frames_spent[1:]


async def main(rows: int, frames: int) -> None:
    started = time.perf_counter()
    model = RunModel(clock=time.monotonic)
    model.apply_all([RunStarted("bench", "/tmp/bench", MODELS, False, 0)])
    for chunk in _history(rows, running=2_000):
        model.apply_all(chunk)
    del chunk
    build_s = time.perf_counter() - started
    gc.collect()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"built {len(model.store):,} rows in {build_s:.1f} s; max RSS {rss_mb:,.0f} MB")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    app = TableApp(model)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        table.refresh_rows()
        await pilot.pause()
        clock = PaintClock(app, app.screen)

        paints, folds = await _table_scene(pilot, model, clock, frames, follow=True)
        print(_summary("paint, following the tail", paints))
        tail_folds = folds

        table.move_cursor(len(model.store) // 2)
        table.follow = False
        await pilot.pause()
        paints, folds = await _table_scene(pilot, model, clock, frames, follow=False)
        print(_summary("paint, parked mid-run", paints))

    events = EventBuffer()
    with tempfile.TemporaryDirectory() as home:
        run_app = make_app(model=model, events=events, settings_file=Path(home) / "s.json")
        async with run_app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            clock = PaintClock(run_app, run_app.screen)
            spent = await _screen_scene(pilot, model, events, clock, frames)
            print(_summary("run screen tick + paint", spent))

    print(f"load average {os.getloadavg()[0]:.2f}")
    fold_us = [s / BATCH * 1e6 for s in tail_folds + folds]
    print(
        f"fold {BATCH} events: p50 {statistics.median(fold_us):.2f} us/event "
        f"(max {max(fold_us):.2f}); {len(model.store):,} rows at the end"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.frames))
