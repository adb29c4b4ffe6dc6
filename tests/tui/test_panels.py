"""The run screen's panels show what the model holds, and repaint only when it moved."""

from __future__ import annotations

import dataclasses
import re

import pytest
from textual.app import App, ComposeResult
from textual.widget import Widget

from engine import DEFAULT_MODEL
from engine._events import (
    CostUpdated,
    Event,
    ItemFinished,
    ItemsCounted,
    RunPaused,
    WorkersChanged,
)
from engine._results import Usage
from tests.tui._factories import (
    MODEL,
    OTHER_MODEL,
    FakeClock,
    finished,
    run_started,
    started,
)
from tests.tui._scenes import busy_run
from tui import _format
from tui.app import make_app
from tui.model import RunModel
from tui.widgets.cost_meter import CostMeter
from tui.widgets.model_breakdown import ModelBreakdown
from tui.widgets.rate_limits import RateLimits
from tui.widgets.run_status import RunStatus
from tui.widgets.stats_panel import StatsPanel
from tui.widgets.throughput import ThroughputPanel, spark

pytestmark = pytest.mark.anyio


class PanelApp(App[None]):
    CSS = "Screen > * { height: auto; }"

    def __init__(self, panel: Widget) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield self.panel


def _text(app: App[None]) -> str:
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def model(clock: FakeClock) -> RunModel:
    return busy_run(clock)


async def test_cost_meter_shows_spent_held_and_cap(model: RunModel) -> None:
    app = PanelApp(CostMeter(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        text = _text(app)
        assert "spent $0.100 of $0.500" in text
        assert "held by calls in flight $0.0031" in text
        assert "19.9% spent, 0.8% held" in text
        bar = text.splitlines()[2]
        assert bar.count("█") == round(model.spent_usd / 0.5 * 40)


async def test_cost_meter_without_a_cap_has_no_bar(model: RunModel) -> None:
    model.apply_all([CostUpdated(spent_usd=1.25, reserved_usd=0.0, cap_usd=None)])
    app = PanelApp(CostMeter(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        text = _text(app)
        assert "spent $1.25 of no cap" in text
        assert "█" not in text and "░" not in text


async def test_stats_panel_counts_with_percentages_and_calls_in_flight(model: RunModel) -> None:
    app = PanelApp(StatsPanel(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        lines = _text(app).splitlines()
        assert lines[0].split() == ["ok", "149", "37.2%"]
        assert lines[1].split() == ["failed", "11", "2.8%"]
        assert lines[2].split() == ["skipped", "0", "0.0%"]
        assert lines[3].split() == ["in", "flight", "3"]
        assert lines[4].split() == ["retrying", "1"]


async def test_in_flight_is_the_engines_count_never_the_rows_waiting_for_the_log(
    clock: FakeClock,
) -> None:
    """A worker takes its next item while its last answer waits for the log's write: the
    rows still ``running`` outnumber the workers, the calls in flight never do."""
    model = RunModel(clock=clock)
    model.apply_all([run_started(MODEL), WorkersChanged(8), *(started(f"i{n}") for n in range(10))])
    model.apply_all([CostUpdated(0.0, 0.004, None, in_flight_usd=0.004, calls_in_flight=8)])
    assert model.counts["running"] == 10
    app = PanelApp(StatsPanel(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        assert _text(app).splitlines()[3].split() == ["in", "flight", "8"]


async def test_held_by_calls_in_flight_is_zero_while_paused_with_nothing_out(
    clock: FakeClock,
) -> None:
    """Items waiting at the pause gate still hold their reservation (the bar shows it), but
    no call is in flight."""
    model = RunModel(clock=clock)
    model.apply_all(
        [run_started(MODEL), RunPaused(), CostUpdated(0.01, 0.02, 1.0, in_flight_usd=0.0)]
    )
    app = PanelApp(CostMeter(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        text = _text(app)
        assert "held by calls in flight $0\n" in text + "\n"
        assert "2.0% held" in text


@pytest.mark.parametrize("width", [80, 120])
async def test_run_screen_keeps_every_progress_figure_at_five_digit_counts(
    clock: FakeClock, width: int
) -> None:
    """At 12,345 of 20,000 the panels used to wrap, and done, elapsed, ETA and workers fell
    out of sight (always at 80 columns): every figure stays, with a progress bar."""
    model = RunModel(clock=clock)
    model.apply_all([run_started(MODEL), ItemsCounted(total=20_000, invalid=0), WorkersChanged(19)])
    for second in range(10):
        clock.advance(1)
        batch: list[Event] = []
        for n in range(second * 1_235, min(12_345, (second + 1) * 1_235)):
            failed = n % 97 == 0
            batch += [
                started(f"item-{n:05d}"),
                finished(
                    f"item-{n:05d}",
                    status="failed" if failed else "ok",
                    kind="timeout" if failed else None,
                ),
            ]
        model.apply_all(batch)
    clock.advance(1)
    model.apply_all([CostUpdated(1.5, 0.1, 20.0, in_flight_usd=0.05, calls_in_flight=19)])
    app = make_app(model=model, first="run")
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        text = _text(app)
        assert model.done == 12_345
        assert "12,345 of 20,000" in text and "61.7%" in text
        assert "elapsed 0:11" in text and "eta 0:" in text and "workers 19" in text
        assert "█" in text.splitlines()[1]  # the progress bar, under the run's name
        for name, count in (("ok", "12,217"), ("failed", "128"), ("in flight", "19")):
            assert re.search(rf"│ {name} +{count}", text), name
        assert re.search(r"│ skipped +0", text) and re.search(r"│ retrying +0", text)
        assert "spent $1.50 of $20.00" in text


async def test_sparklines_are_empty_at_a_zero_rate_and_level_at_a_steady_one(
    clock: FakeClock,
) -> None:
    model = RunModel(clock=clock)
    model.apply_all([run_started(MODEL)])
    for _ in range(5):
        clock.advance(1)
        model.apply_all([])
    app = PanelApp(ThroughputPanel(model))
    async with app.run_test(size=(20, 6)) as pilot:
        await pilot.pause()
        lines = _text(app).splitlines()
        assert lines[1].strip() == "" and lines[3].strip() == ""
    assert spark([5.0, 5.0, 5.0], 5) == "  ███"
    assert spark([0.0, 10.0, 5.0], 3) == " █▄"
    assert spark([3.0], 4) == "   █"


async def test_throughput_panel_shows_recent_rates(model: RunModel) -> None:
    app = PanelApp(ThroughputPanel(model))
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        text = _text(app)
        assert "items/s 8" in text
        assert "cost/min $0.302" in text
        assert "█" in text


async def test_model_breakdown_has_a_row_per_model_and_repaints_only_on_change(
    model: RunModel,
) -> None:
    table = ModelBreakdown(model)
    app = PanelApp(table)
    async with app.run_test(size=(120, 6)) as pilot:
        await pilot.pause()
        lines = _text(app).splitlines()
        assert lines[0].split()[:3] == ["model", "done", "ok"]
        assert lines[1].split() == [
            MODEL,
            "80",
            "80",
            "0",
            "0",
            "2",
            "35.2k/1.92k",
            "$0.017",
            "615ms",
            "-",
        ]
        assert lines[2].split()[:6] == [OTHER_MODEL, "80", "69", "11", "0", "2"]
        repaints: list[bool] = []
        original = table.refresh

        def spy(*regions: object, **kwargs: object) -> ModelBreakdown:
            repaints.append(True)
            return original(*regions, **kwargs)  # type: ignore[arg-type]

        table.refresh = spy  # type: ignore[assignment]
        model.tick()
        table.sync()
        assert repaints == []
        model.apply_all([finished("ticket-0080", MODEL, cost=0.5)])
        table.sync()
        assert repaints == [True]
        assert table.shown[0][1:3] == ("81", "81")


async def test_rate_limits_show_use_against_limits_and_back_off(
    model: RunModel, clock: FakeClock
) -> None:
    table = RateLimits(model)
    app = PanelApp(table)
    async with app.run_test(size=(120, 6)) as pilot:
        await pilot.pause()
        assert table.shown == [
            (MODEL, "312/500", "131k/200k", "0", "-"),
            (OTHER_MODEL, "48/50", "21.5k/40k", "3", "5s"),
        ]
        assert "RPM used/limit" in _text(app).splitlines()[0]
        clock.advance(3)
        model.tick()
        table.sync()
        assert table.shown[1][4] == "2s"


async def test_rate_limits_list_a_simulated_model_as_having_no_limit(clock: FakeClock) -> None:
    """The engine paces simulate only when told --rpm/--tpm, so it never reports: the panel
    was empty; it says the model has no limit (and a real API's, that none is known yet)."""
    model = RunModel(clock=clock)
    model.apply_all([run_started(DEFAULT_MODEL, MODEL)])
    table = RateLimits(model)
    app = PanelApp(table)
    async with app.run_test(size=(120, 6)) as pilot:
        await pilot.pause()
        assert table.shown == [
            (DEFAULT_MODEL, "no limit", "no limit", "0", "-"),
            (MODEL, "not known yet", "not known yet", "0", "-"),
        ]
        assert DEFAULT_MODEL in _text(app)


async def test_run_status_names_the_run_and_its_state(model: RunModel) -> None:
    app = PanelApp(RunStatus(model))
    async with app.run_test(size=(120, 3)) as pilot:
        await pilot.pause()
        line = _text(app).splitlines()[0]
        assert line.startswith(" RUNNING ")
        assert "run 20261122-150000-demo" in line
        assert f"models {MODEL}, {OTHER_MODEL}" in line


async def test_a_model_with_no_price_shows_its_cost_as_unknown(clock: FakeClock) -> None:
    """A model with no price and no cap: its cost is unknown, never $0, in the cost meter,
    the per-model panel and the item table's cost cell."""
    model = RunModel(clock=clock)
    unpriced = finished("a", OTHER_MODEL, cost=0.0)
    model.apply_all(
        [
            run_started(OTHER_MODEL),
            ItemFinished(dataclasses.replace(unpriced.result, unpriced=True)),
            CostUpdated(0.0, 0.0, None),
        ]
    )
    meter = PanelApp(CostMeter(model))
    async with meter.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        assert "spent unknown of no cap" in _text(meter)
    breakdown = PanelApp(ModelBreakdown(model))
    async with breakdown.run_test(size=(100, 6)) as pilot:
        await pilot.pause()
        [row] = [line for line in _text(breakdown).splitlines() if OTHER_MODEL in line]
        assert "unknown" in row and "$0" not in row
    [row] = [model.store.get(OTHER_MODEL, "a")]
    assert row is not None and _format.money(row.cost_usd) == "unknown"


async def test_model_breakdown_shows_prompt_cache_reads_and_what_they_saved() -> None:
    model = RunModel()
    done = finished("a", OTHER_MODEL)
    result = dataclasses.replace(
        done.result, usage=Usage(4_000, 20, cached_tokens=3_500), cache_saved_usd=0.0125
    )
    model.apply_all([run_started(OTHER_MODEL), ItemFinished(result)])
    breakdown = PanelApp(ModelBreakdown(model))
    async with breakdown.run_test(size=(120, 6)) as pilot:
        await pilot.pause()
        [row] = [line for line in _text(breakdown).splitlines() if OTHER_MODEL in line]
        assert f"{_format.count(3_500)}/{_format.money(0.0125)}" in row.split()
