"""The Compare screen on a two-model-plus-judge run on ``simulate`` (whose models answer
differently): its scoreboard is ``batchdeck compare RUN --format json``'s, ``d`` keeps the
items the models disagree on (read from ``batchdeck export``), it follows a live run to its
end, and a snapshot at 120x36."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from engine import (
    Event,
    ItemFinished,
    ItemRow,
    Run,
    RunFinished,
    RunStarted,
    Scoreboard,
    item_rows,
    load_schema,
    make_config,
)
from engine._compare import compare
from engine._lanes import lane_keys
from engine._steps import judge_steps
from tests.cli import SAMPLES, batchdeck
from tests.tui._flows import SIZE, TICKET_COUNT, finished, settle, until
from tui.app import BatchdeckApp, make_app
from tui.model import ComparisonModel
from tui.screens.compare import CompareScreen, score_cells
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


def replayed_steady(run: Run) -> Iterator[Event]:
    """The run's results as its replay publishes them, each answer's latency made its line
    number, then its end."""
    yield RunStarted(run.run_id, str(run.run_dir), lane_keys(run.config), False, 0, "replaying")
    for row in item_rows(run):
        for result in row.results:
            yield ItemFinished(replace(result, latency_ms=100.0 + result.line))
    yield RunFinished("finished", 0, 0, 0, 0, 0.0, 0, 0, 0.0)


async def compare_from_history(app: BatchdeckApp, pilot: Pilot[None]) -> CompareScreen:
    """``c`` on History's highlighted run, once the Compare screen has read it to its end."""
    await settle(app, pilot)
    assert isinstance(app.screen, HistoryScreen)
    await pilot.press("c")
    await until(pilot, lambda: isinstance(app.screen, CompareScreen))
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    await until(pilot, lambda: read_back(screen))
    return screen


def read_back(screen: CompareScreen) -> bool:
    """The screen has shown everything its run published, to its end."""
    return screen.comparison.finished and screen.step is not None and "live" not in title(screen)


def title(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-title", Static).render())


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
        screen = await compare_from_history(app, pilot)
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
        (final,) = compare(app.session.run.config, item_rows(Run.open(app.session.run.run_dir)))
        assert final.items == TICKET_COUNT
        await until(pilot, lambda: screen.step == final)  # the screen folds once more at the end


def test_snapshot(
    snap_compare: object, batchdeck_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 120x36, the third item highlighted; under a fixed run id, with each answer's latency
    made its line number (``simulate``'s answers, costs and verdicts are already fixed)."""
    made = judged_run(batchdeck_home)
    run = Run.open(shutil.copytree(made, made.parent / "20261203-120000-snap"))
    comparison = ComparisonModel(run.config)
    comparison.apply_all(replayed_steady(run))

    async def open_compare(pilot: Pilot[None]) -> None:
        screen = CompareScreen(run, comparison)
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.step is not None)
        await pilot.press("down", "down")

    assert snap_compare(  # type: ignore[operator]
        make_app(), terminal_size=SIZE, run_before=open_compare
    )


TWO_COMPARED = f"""
[[step]]
name = "draft"
models = ["{MODELS[0]}", "{MODELS[1]}"]
prompt = "Draft a reply to this ticket: {{context}}"

[[step]]
name = "label"
models = ["{MODELS[0]}", "{MODELS[1]}"]
prompt = "Label this ticket: {{context}} Drafts: {{draft.answers}}"
schema = "{SCHEMA}"

[[step]]
name = "judge"
kind = "judge"
model = "{JUDGE}"
"""


@pytest.mark.anyio
async def test_s_switches_between_two_compared_steps_each_the_cli_s(
    tmp_path: Path, batchdeck_home: Path
) -> None:
    """A pipeline with two steps of two models, the second judged: each step's scoreboard is
    its entry in ``batchdeck compare --format json``, and ``s`` goes from one to the other."""
    pipeline = tmp_path / "run.toml"
    pipeline.write_text(TWO_COMPARED)
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), "--pipeline", str(pipeline),
        "--sim-latency-ms", "0", home=batchdeck_home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stderr.split(" in ", 1)[1].split()[0])
    compared = batchdeck("compare", str(run_dir), "--format", "json", home=batchdeck_home)
    draft, label = orjson.loads(compared.stdout)["steps"]
    assert (draft["step"], label["step"]) == ("draft", "label")
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        screen = await compare_from_history(app, pilot)
        assert screen.step is not None and screen.step.as_json() == draft
        assert "step draft (1 of 3, s: next)" in title(screen) and "no judge" in title(screen)
        items = screen.query_one("#compare-items", DataTable)
        assert [column.label.plain for column in items.ordered_columns] == ["id", *LABELS]
        await pilot.press("s")
        assert screen.step.as_json() == label
        assert "step label (2 of 3" in title(screen) and f"judged by {JUDGE}" in title(screen)
        assert [c.label.plain for c in items.ordered_columns] == ["id", *LABELS, "best", "conf"]
        assert items.row_count == TICKET_COUNT
        assert {row[3] for row in cells(items)} <= set(LABELS)
        await pilot.press("s")  # the judge's view of label: its verdicts, item by item
        assert screen.judging and screen.step.as_json() == label
        assert "the judge on step label (3 of 3" in title(screen)
        assert [c.label.plain for c in items.ordered_columns] == ["id", "best", "conf", "verdict"]
        exported = batchdeck("export", str(run_dir), home=batchdeck_home)
        verdicts = {
            row["id"]: row["steps"]["judge"][JUDGE]["parsed"]
            for row in map(orjson.loads, exported.stdout.splitlines())
        }
        for id, best, confidence, verdict in cells(items):
            judged = verdicts[id]
            assert (best, confidence) == (
                LABELS[MODELS.index(judged["best"])],
                judged["confidence"],
            )
            assert " ".join(judged["verdict"].split()).startswith(verdict.rstrip("…"))
        await pilot.press("s")
        assert screen.step.as_json() == draft


def test_folded_live_in_any_order_the_scores_end_as_the_cli_s(
    batchdeck_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results folded in a shuffled order, some twice (a retried pair: the later wins), with
    refreshes in between, end in the one-pass scores exactly; a refresh counts again only the
    items that changed since the last."""
    run = Run.open(judged_run(batchdeck_home))
    expected = compare(run.config, item_rows(run))
    results = [result for row in item_rows(run) for result in row.results]
    shuffled = random.Random(5).sample(results, len(results))
    failed_first = [replace(r, status="failed", output=None, parsed=None) for r in shuffled[:20]]
    comparison = ComparisonModel(run.config)
    comparison.apply_all(
        [RunStarted(run.run_id, str(run.run_dir), lane_keys(run.config), False, 0)]
    )
    counted: list[str] = []
    add = Scoreboard.add

    def counting(board: Scoreboard, row: ItemRow) -> None:
        counted.append(row.first.id)
        add(board, row)

    monkeypatch.setattr(Scoreboard, "add", counting)
    events = [ItemFinished(r) for r in (*failed_first, *shuffled)]
    for start in range(0, len(events), 37):
        chunk = events[start : start + 37]
        counted.clear()
        comparison.apply_all(chunk)
        changed = comparison.refresh()
        assert sorted(counted) == sorted(changed) == sorted({e.result.id for e in chunk})
    assert comparison.scores() == expected
