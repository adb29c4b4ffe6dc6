"""The run table's step progress for a pipeline: each row shows its item's steps done and
the step it is at or stopped at (``2/3 classify``, ``1/3 classify: timeout``), following the
events live, sortable by steps done; a run of one step has no such column."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from textual.widgets import Static

from engine import make_config
from engine._pipeline_file import load_pipeline
from tests.cli import batchdeck
from tests.test_pipeline_cli import THREE_STEPS, TICKETS
from tests.tui._factories import done_items, finished, run_started, started
from tests.tui._flows import finished as run_finished
from tests.tui._flows import until
from tui.app import make_app
from tui.model import RunModel
from tui.screens.inspector import InspectorScreen
from tui.screens.setup import SetupScreen
from tui.widgets.item_table import ItemTable

EXTRACT, CLASSIFY, SUMMARISE = (
    "extract/simulate:gpt-4o-mini",
    "classify/simulate:gpt-4o-mini",
    "summarise/simulate:claude-haiku-4-5",
)
LANES = (EXTRACT, CLASSIFY, SUMMARISE)


def progress(model: RunModel, lane: str, id: str) -> str:
    row = model.store.get(lane, id)
    assert row is not None and row.progress is not None
    return str(row.progress)


def test_an_items_progress_follows_its_lanes_events_on_every_row_of_it() -> None:
    model = RunModel(clock=lambda: 0.0)
    model.apply_all([run_started(*LANES), started("a", EXTRACT)])
    assert progress(model, EXTRACT, "a") == "0/3 extract"
    model.apply_all([finished("a", EXTRACT), started("a", CLASSIFY)])
    assert progress(model, CLASSIFY, "a") == "1/3 classify"
    before = model.store.get(EXTRACT, "a").version  # type: ignore[union-attr]
    model.apply_all([finished("a", CLASSIFY, status="failed", kind="timeout")])
    extract_row = model.store.get(EXTRACT, "a")
    assert extract_row is not None and extract_row.version > before  # repainted with it
    assert progress(model, EXTRACT, "a") == "1/3 classify: timeout"
    model.apply_all([finished("a", SUMMARISE, status="skipped", kind="upstream")])
    assert progress(model, SUMMARISE, "a") == "1/3 classify: timeout"  # not "summarise"
    # a retry of the failed lane that answers moves the item on
    model.apply_all([started("a", CLASSIFY), finished("a", CLASSIFY), started("a", SUMMARISE)])
    assert progress(model, EXTRACT, "a") == "2/3 summarise"
    model.apply_all([finished("a", SUMMARISE)])
    assert progress(model, SUMMARISE, "a") == "3/3"


def test_a_step_with_two_models_is_done_when_both_answered() -> None:
    lanes = ("answer/simulate:a", "answer/simulate:b", "judge/simulate:c")
    model = RunModel(clock=lambda: 0.0)
    model.apply_all([run_started(*lanes), started("x", lanes[0]), started("x", lanes[1])])
    model.apply_all([finished("x", lanes[0])])
    assert progress(model, lanes[0], "x") == "0/2 answer"
    model.apply_all([finished("x", lanes[1]), started("x", lanes[2])])
    assert progress(model, lanes[1], "x") == "1/2 judge"


def test_a_run_of_one_step_shows_no_progress() -> None:
    model = RunModel(clock=lambda: 0.0)
    model.apply_all([run_started("simulate:a", "simulate:b"), *done_items(3, model="simulate:a")])
    row = model.store.get("simulate:a", "item-00001")
    assert row is not None and row.progress is None and not model.store.steps


@pytest.mark.anyio
async def test_a_three_step_pipeline_on_simulate_shows_where_each_item_stands(
    tmp_path: Path, batchdeck_home: Path
) -> None:
    """The table's steps column, live and at the end, against the export's ``error`` column
    (where each stopped item stopped); ``o`` sorts the items that did the fewest steps
    first."""
    pipeline = tmp_path / "run.toml"
    pipeline.write_text(THREE_STEPS)
    steps = load_pipeline(pipeline)
    config = make_config(
        input=TICKETS,
        models=tuple(dict.fromkeys(model for step in steps for model in step.models)),
        steps=steps,
        workers=4,
        sim={"latency_ms": 20, "failure_rate": 0.3, "seed": 7},
        retry={"retries": 0},
    )
    app = make_app(first="run")
    async with app.run_test(size=(120, 36)) as pilot:
        app.post_message(SetupScreen.StartRequested(config))
        await until(pilot, lambda: app.session.running)
        table = app.screen.query_one(ItemTable)
        store = app.session.model.store
        seen_live: set[str] = set()

        def watched() -> bool:
            seen_live.update(
                str(store[p].progress) for p in range(len(store)) if store[p].status == "running"
            )
            return run_finished(app)

        await until(pilot, watched, tries=3000)
        assert {"0/3 extract", "1/3 classify", "2/3 summarise"} <= seen_live
        assert "steps" in table.render_line(0).text
        run = app.session.run
        assert run is not None
        exported = batchdeck("export", str(run.run_dir), home=batchdeck_home)
        rows = {r["id"]: r for r in map(orjson.loads, exported.stdout.splitlines())}
        names = ["extract", "classify", "summarise"]
        stopped = 0
        for position in range(len(store)):
            row = store[position]
            item = rows[row.id]
            assert row.progress is not None
            if item["status"] == "ok":
                assert str(row.progress) == "3/3"
            else:
                stopped += 1
                step = item["error"].split(":")[0]
                assert str(row.progress) == f"{names.index(step)}/3 {item['error']}"
        assert 0 < stopped < len(store)

        table.focus()
        await pilot.press("o", "o", "o")
        assert str(table.border_title) == "Items · all · by steps done, fewest first"
        await pilot.pause()
        shown = [table.render_line(y).text for y in range(1, 6)]
        assert all(" 0/3 extract: " in line for line in shown), shown

        # t keeps the items at one step (or stopped there), then those done
        await pilot.press("o", "t", "t")
        assert str(table.border_title) == "Items · all · at classify"
        await pilot.pause()
        at_classify = [p for p in range(len(store)) if store[p].progress.step == "classify"]  # type: ignore[union-attr]
        assert at_classify and list(table._view) == at_classify
        await pilot.press("t", "t")
        assert str(table.border_title) == "Items · all · done"
        await pilot.pause()
        assert all(str(store[p].progress) == "3/3" for p in table._view) and table._view
        await pilot.press("t")
        assert str(table.border_title) == "Items · all"

        # the inspector of a classify lane shows the prompt it was sent: its step's template
        # with the item's field and extract's answer (as the export has them)
        item = next(r for r in rows.values() if r["status"] == "ok")
        position = store.position(CLASSIFY, item["id"])
        assert position is not None
        table.move_cursor(position)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))
        extract = item["steps"]["extract"]["simulate:gpt-4o-mini"]["output"]
        prompt = app.screen.query_one("#prompt", Static)
        assert str(prompt.content) == f"Label this ticket ({item['customer_tier']}): {extract}"
