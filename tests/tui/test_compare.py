"""The Compare screen on a two-model-plus-judge run on ``simulate`` (whose models answer
differently): its scoreboard is ``batchdeck compare RUN --format json``'s, ``d`` keeps the
items the models disagree on (read from ``batchdeck export``), it follows a live run to its
end, and a snapshot at 120x36."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from engine import ItemRow, Run, item_rows, load_schema, make_config
from engine._steps import judge_steps
from tests.cli import SAMPLES, batchdeck
from tests.tui._flows import SIZE, TICKET_COUNT, finished, settle, until
from tui.app import make_app
from tui.screens.compare import CompareScreen, fold, score_cells
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen

MODELS = ("simulate:gpt-4o-mini", "simulate:claude-haiku-4-5")
JUDGE = "simulate:gpt-4o"
LABELS = ("gpt-4o-mini", "claude-haiku-4-5")
"""The models as the screen names them: without the provider they share."""
SCHEMA = SAMPLES / "schemas" / "ticket_label.json"


def judged_run(home: Path) -> Path:
    """A finished two-model-plus-judge run made by the CLI; its run dir."""
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), "--model", MODELS[0], "--model", MODELS[1],
        "--judge", JUDGE, "--schema", str(SCHEMA), "--sim-latency-ms", "0", home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stderr.split(" in ", 1)[1].split()[0])


def disagreements(run_dir: Path, home: Path) -> list[str]:
    """The ids of the items whose two answers differ, from ``batchdeck export``'s JSONL."""
    exported = batchdeck("export", str(run_dir), home=home)
    rows = [orjson.loads(line) for line in exported.stdout.splitlines()]
    return [
        row["id"]
        for row in rows
        if len({answer["output"].strip() for answer in row["steps"]["answer"].values()}) > 1
    ]


def cells(table: DataTable[object]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.anyio
async def test_from_history_the_scoreboard_is_the_cli_s_and_d_keeps_disagreements(
    batchdeck_home: Path,
) -> None:
    run_dir = judged_run(batchdeck_home)
    compared = batchdeck("compare", str(run_dir), "--format", "json", home=batchdeck_home)
    (expected,) = orjson.loads(compared.stdout)["steps"]
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: screen.step is not None)
        assert screen.step is not None and screen.step.as_json() == expected
        board = screen.query_one("#scoreboard", DataTable)
        assert [row[0] for row in cells(board)] == list(LABELS)
        assert cells(board) == [
            list(score_cells(label, score))
            for label, score in zip(LABELS, screen.step.models, strict=True)
        ]

        items = screen.query_one("#compare-items", DataTable)
        assert items.row_count == TICKET_COUNT
        assert {row[3] for row in cells(items)} == set(LABELS)  # the judge's best, each item
        disagreeing = disagreements(run_dir, batchdeck_home)
        assert 0 < len(disagreeing) < TICKET_COUNT  # simulate's models differ, not always
        await pilot.press("d")
        assert [row[0] for row in cells(items)] == disagreeing
        detail = str(screen.query_one("#compare-detail", Static).render())
        assert detail.startswith(f"{disagreeing[0]}  the models disagree")
        assert "≠ " in detail and "reasoning: " in detail and "confidence " in detail
        await pilot.press("down", "d")
        assert items.row_count == TICKET_COUNT
        assert cells(items)[items.cursor_row][0] == disagreeing[1]  # the cursor stayed put
        await pilot.press("escape")
        assert isinstance(app.screen, HistoryScreen)


@pytest.mark.anyio
async def test_it_follows_a_live_run_from_the_run_screen_to_its_end() -> None:
    config = make_config(
        input=str(SAMPLES / "tickets.jsonl"),
        models=(*MODELS, JUDGE),
        steps=judge_steps(
            MODELS,
            JUDGE,
            prompt=None,
            system=None,
            schema=load_schema(str(SCHEMA)),
            judge_prompt=None,
        ),
        workers=2,
        sim={"latency_ms": 40},
    )
    app = make_app(first="run")
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(SetupScreen.StartRequested(config))
        await until(pilot, lambda: app.session.running)
        assert isinstance(app.screen, RunScreen)
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: screen.step is not None)
        assert screen.step is not None and screen.step.items < TICKET_COUNT  # mid-run
        await until(pilot, lambda: finished(app), tries=1500)
        assert app.session.run is not None
        final = fold(Run.open(app.session.run.run_dir)).scores[0]
        assert final.items == TICKET_COUNT
        await until(pilot, lambda: screen.step == final)  # the screen folds once more at the end


def test_snapshot(
    snap_compare: object, batchdeck_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 120x36, the third item highlighted; under a fixed run id, with each answer's latency
    made its line number (``simulate``'s answers, costs and verdicts are already fixed)."""
    made = judged_run(batchdeck_home)
    run_dir = shutil.copytree(made, made.parent / "20261203-120000-snap")

    def steady(run: Run) -> Iterator[ItemRow]:
        for row in item_rows(run):
            yield ItemRow(tuple(replace(r, latency_ms=100.0 + r.line) for r in row.results))

    monkeypatch.setattr("tui.screens.compare.item_rows", steady)

    async def open_compare(pilot: Pilot[None]) -> None:
        screen = CompareScreen(Run.open(run_dir))
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.step is not None)
        await pilot.press("down", "down")

    assert snap_compare(  # type: ignore[operator]
        make_app(), terminal_size=SIZE, run_before=open_compare
    )
