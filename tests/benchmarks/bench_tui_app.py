"""The app under load: a 100,000-item run inside it, and how fast a key press shows.

1. Throughput: the same run (``simulate`` at 0 ms, 8 workers, the log fsyncing in
   groups; items/s over the engine's own elapsed time, from its first item to its
   last record) headless and inside the app (the real app, started from a
   ``StartRequested`` as the Start button sends it, its run screen refreshing at
   15 Hz while the engine runs as its worker). Target: the app reaches >= 70%
   of headless.
2. Key latency: during a second run in the app, a key (``f``, which cycles the
   item table's status filter) is sent every 100 ms the way a terminal driver
   sends it; its latency is the time until the first frame whose table shows
   the new filter has been rendered to terminal escape codes (a headless app
   skips that step, so it is done here, as a terminal would need it). Target:
   p95 <= 100 ms.

    python -m tests.benchmarks.bench_tui_app [--items 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from textual import events

from engine import Run, RunConfig, make_config
from tests.benchmarks._common import median_of, write_items
from tui.app import BatchdeckApp, make_app
from tui.screens.setup import SetupScreen
from tui.widgets.item_table import ItemTable

SIZE = (140, 42)
KEY_EVERY_S = 0.1


def config_for(source: Path) -> RunConfig:
    return make_config(input=str(source), sim={"latency_ms": 0}, workers=8)


def headless(source: Path, work: Path) -> float:
    run = Run.create(config_for(source), work / f"headless-{time.monotonic_ns()}")
    finished = anyio.run(run.execute, [])
    return finished.ok / finished.elapsed_s


def rendering(app: BatchdeckApp, on_frame: Any = None) -> None:
    """Make the headless app turn each update into escape codes, as a terminal needs."""
    display = app._display

    def render_then_display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            renderable.render_segments(app.console)
        display(screen, renderable)
        if on_frame is not None:
            on_frame()

    app._display = render_then_display  # type: ignore[method-assign]


async def in_app(source: Path, settings: Path, *, press_keys: bool) -> tuple[float, list[float]]:
    app = make_app(settings_file=settings, first="setup")
    latencies: list[float] = []
    pending: dict[str, Any] = {}

    def on_frame() -> None:
        if pending:
            table = pending["table"]
            if table.status_filter != pending["was"]:
                latencies.append(time.perf_counter() - pending["at"])
                pending.clear()

    async with app.run_test(size=SIZE) as pilot:
        rendering(app, on_frame)
        config = config_for(source)
        app.post_message(SetupScreen.StartRequested(config))
        while app.session.worker is None:
            await pilot.pause()
        worker = app.session.worker
        if press_keys:
            while not worker.is_finished:
                await anyio.sleep(KEY_EVERY_S)
                tables = app.screen.query(ItemTable)
                if pending or not tables or app._driver is None:
                    continue
                table = tables.first()
                pending.update(table=table, was=table.status_filter, at=time.perf_counter())
                key = events.Key("f", "f")
                key.set_sender(app)
                app._driver.send_message(key)
        await worker.wait()
        finished = worker.result
    return finished.ok / finished.elapsed_s, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["BATCHDECK_HOME"] = str(work / "home")  # the app's runs go here too
        source = write_items(work / "items.jsonl", args.items)
        settings = work / "settings.json"
        base, base_all = median_of(args.runs, lambda: headless(source, work))
        app_rate, app_all = median_of(args.runs, lambda: anyio.run(_rate, source, settings))
        _, latencies = anyio.run(partial(in_app, source, settings, press_keys=True))
    print(f"{args.items:,} items, simulate at 0 ms, 8 workers, log fsyncing in groups:")
    print(f"  headless: {base:>9,.0f} items/s  (runs: {_fmt(base_all)})")
    print(f"  in app:   {app_rate:>9,.0f} items/s  (runs: {_fmt(app_all)})")
    print(f"  app / headless: {100 * app_rate / base:.1f} %  (target >= 70%)")
    ms = sorted(1000 * v for v in latencies)
    if ms:
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(
            f"key press to rendered frame during a run: {len(ms)} presses, "
            f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms "
            "(target p95 <= 100 ms)"
        )


async def _rate(source: Path, settings: Path) -> float:
    rate, _ = await in_app(source, settings, press_keys=False)
    return rate


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
