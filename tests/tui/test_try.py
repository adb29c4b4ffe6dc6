"""Setup's Try: a few items on every chosen model, side by side, then the full run from there.

The models are two OpenAI models on the fake server over real HTTP (``simulate``'s
answers are never cached: they cost nothing), so what the try paid for and what the
cache gives back are seen at the server: the requests it counts.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from engine import load_results
from engine._steps import judge_steps
from tests.fakeserver.fixtures import serve_in_process
from tests.tui._flows import TICKET_COUNT, finished, set_up, settle, until
from tests.tui.test_compare import replayed_steady
from tui.app import BatchdeckApp, make_app
from tui.model import TryModel
from tui.screens.setup import SetupScreen
from tui.settings import Settings, save_settings
from tui.widgets.cost_meter import CostMeter
from tui.widgets.try_panel import CACHED_MARK, TryPanel

pytestmark = pytest.mark.anyio

MODELS = ("openai:gpt-4o-mini", "openai:gpt-4o")
LABELS = ("gpt-4o-mini", "gpt-4o")
TRIED = 5
SMALL = (80, 24)


def _cells(panel: TryPanel) -> list[list[str]]:
    """The try's table as text: one list of cells per row (id, then each model's answer)."""
    table = panel.query_one("#try-items")
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]  # type: ignore[attr-defined]


async def _try(app: BatchdeckApp, pilot: Pilot[None]) -> TryPanel:
    """Press Try and wait for the try to end and the panel to show it."""
    panel = app.screen.query_one(TryPanel)
    await pilot.press("ctrl+t")
    await until(pilot, lambda: not panel.running and bool(panel.projection), tries=1000)
    await settle(app, pilot)
    return panel


async def test_try_edit_try_again_then_start_reuses_what_the_try_paid_for() -> None:
    async with serve_in_process(api_key=None) as fake:
        save_settings(
            Settings(models=MODELS, added_models=dict.fromkeys(MODELS, fake.openai_base_url))
        )
        app = make_app(first="setup")
        async with app.run_test(size=SMALL) as pilot:
            screen = await set_up(app, pilot)
            assert isinstance(screen, SetupScreen)
            screen.query_one("#try-n", Input).value = str(TRIED)
            panel = await _try(app, pilot)
            assert panel.display and not screen.query_one("#setup-main").display
            rows = _cells(panel)
            assert len(rows) == TRIED and fake.stats()["requests"] == TRIED * 2
            table = panel.query_one("#try-items")
            labels = [str(c.label) for c in table.columns.values()]  # type: ignore[attr-defined]
            assert labels == ["id", *LABELS]
            assert all(cell and not cell.startswith(CACHED_MARK) for row in rows for cell in row)
            status = str(panel.query_one("#try-status", Static).render())
            assert f"{TRIED} items · {TRIED * 2} answers" in status and "↺" not in status
            assert f"Full run: {TICKET_COUNT} items" in status
            assert f"calibrated from {TRIED} sampled items" in status

            await pilot.press("escape")  # back to the form: edit the prompt, try again
            await settle(app, pilot)
            assert screen.query_one("#setup-main").display and not panel.display
            prompt = screen.query_one("#prompt", TextArea)
            prompt.load_text(prompt.text + "\nAnswer in one word.")
            await settle(app, pilot)
            await _try(app, pilot)
            assert fake.stats()["requests"] == TRIED * 4  # a new prompt: new answers, paid
            assert not any(c.startswith(CACHED_MARK) for row in _cells(panel) for c in row[1:])

            await _try(app, pilot)  # nothing changed: every answer comes from the cache
            assert fake.stats()["requests"] == TRIED * 4
            assert all(c.startswith(CACHED_MARK) for row in _cells(panel) for c in row[1:])
            status = str(panel.query_one("#try-status", Static).render())
            assert f"{TRIED * 2} ↺ from the cache" in status and "· $0 ·" in status

            await pilot.press("escape")
            await settle(app, pilot)  # the estimate, calibrated by the tries' calls
            estimate = str(screen.query_one("#estimate", Static).render())
            assert f"calibrated from {TRIED} sampled items" in estimate, estimate
            assert f"({TRIED * 2:,} from the cache, free)" in estimate, estimate

            await pilot.press("ctrl+s")
            await settle(app, pilot)
            await until(pilot, lambda: finished(app), tries=1500)
            paid = fake.stats()["requests"] - TRIED * 4
            assert paid == (TICKET_COUNT - TRIED) * 2
            assert app.session.model.cached == TRIED * 2
            meter = str(app.screen.query_one(CostMeter).render())
            assert f"{TRIED * 2 / (TICKET_COUNT * 2):.0%} hit rate" in meter, meter
            run = app.session.run
            assert run is not None
        results = list(load_results(run))
        first = {r.id for r in results if r.line <= TRIED}
        assert len(first) == TRIED
        for result in results:
            tried = result.line <= TRIED
            assert result.cached == tried and (result.cost_usd == 0) == tried, result


async def test_a_wrong_number_of_items_is_one_line_and_tries_nothing() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SMALL) as pilot:
        screen = await set_up(app, pilot)
        screen.query_one("#try-n", Input).value = "0"
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        panel = screen.query_one(TryPanel)
        status = str(panel.query_one("#try-status", Static).render())
        assert status == "Items to try: a whole number from 1, please (not '0')"
        assert panel.run is None


def test_snapshot_of_the_try_panel(snap_compare: object) -> None:
    """At 80x24, two simulate models on 5 items, the third highlighted; each answer's
    latency made its line number (``simulate``'s answers and costs are already fixed)."""
    save_settings(
        Settings(
            models=("simulate:gpt-4o-mini", "simulate:claude-haiku-4-5"),
            added_models={"simulate:claude-haiku-4-5": ""},
            caps={"sim_latency_ms": 0},
        )
    )

    async def tried(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BatchdeckApp)
        screen = await set_up(app, pilot)
        screen.query_one("#try-n", Input).value = str(TRIED)
        panel = await _try(app, pilot)
        assert panel.run is not None
        panel.model = TryModel(panel.run.config)
        panel.model.apply_all(replayed_steady(panel.run))
        panel.show()
        await pilot.press("down", "down")
        await settle(app, pilot)

    assert snap_compare(  # type: ignore[operator]
        make_app(first="setup"), terminal_size=SMALL, run_before=tried
    )


async def test_a_try_with_a_judge_shows_its_verdicts_after_the_answers() -> None:
    """Setup has no judge field yet: the form's run is given one, as ``--judge`` would, and
    tried through the panel (two simulate models, whose answers differ on some items)."""
    models = ("simulate:gpt-4o-mini", "simulate:claude-haiku-4-5")
    save_settings(Settings(models=models, added_models={models[1]: ""}))
    app = make_app(first="setup")
    async with app.run_test(size=SMALL) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0")
        config = screen.config()
        assert config is not None
        judged = config.model_copy(
            update={
                "models": (*models, "simulate:gpt-4o"),
                "steps": judge_steps(
                    models, "simulate:gpt-4o", prompt=None, system=None, schema=None
                ),
            }
        )
        panel = screen.query_one(TryPanel)
        panel.query_one("#try-n", Input).value = str(TRIED)
        panel.begin(judged)
        await until(pilot, lambda: bool(panel.projection), tries=1000)
        await settle(app, pilot)
        table = panel.query_one("#try-items")
        labels = [str(c.label) for c in table.columns.values()]  # type: ignore[attr-defined]
        assert labels == ["id", "gpt-4o-mini", "claude-haiku-4-5", "best", "conf"]
        rows = _cells(panel)
        assert len(rows) == TRIED
        assert {row[3] for row in rows} <= {"gpt-4o-mini", "claude-haiku-4-5"}
        assert {row[4] for row in rows} <= {"high", "medium", "low"}
        detail = str(panel.query_one("#try-detail", Static).render())
        assert "judge simulate:gpt-4o  best " in detail and "verdict: " in detail, detail
