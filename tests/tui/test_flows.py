"""Whole flows on ``simulate``: set up, run, pause, resume, inspect, retry, export, quit, resume.

Each test drives the real app, engine and checkpoint log in a tmp batchdeck
home; runs are small (the 60 sample tickets) and the simulated latency short.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, RadioButton, SelectionList

from engine import list_runs
from tests.tui._flows import SIZE, TICKET_COUNT, finished, set_up, settle, start, until
from tui.app import make_app
from tui.screens.export import ExportScreen
from tui.screens.failures import FailuresScreen
from tui.screens.history import HistoryScreen
from tui.screens.inspector import InspectorScreen
from tui.screens.quit import QuitScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.widgets.item_table import ItemTable
from tui.widgets.run_status import RunStatus

pytestmark = pytest.mark.anyio


async def test_set_up_start_pause_resume_finish() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot, workers="4", sim_latency_ms="100")
        assert isinstance(app.screen, RunScreen)
        model = app.session.model
        await until(pilot, lambda: len(model.store) >= 4)
        await pilot.press("space")
        assert app.session.run is not None and app.session.run.paused
        screen = app.screen
        assert screen.check_action("resume", ()) and not screen.check_action("pause", ())
        await until(pilot, lambda: model.active == 0)
        started = len(model.store)
        assert started < TICKET_COUNT
        for _ in range(5):
            await pilot.pause(0.05)
            assert len(model.store) == started, "an item was dispatched while paused"
        assert model.state == "paused"
        await pilot.press("space")
        await until(pilot, lambda: finished(app))
        assert model.state == "finished"
        assert model.done == TICKET_COUNT == model.counts["ok"]


async def test_inspect_a_failure_retry_it_and_export_csv(tmp_path: Path) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot, retries="0", sim_latency_ms="0", sim_failure_rate="0.3")
        await until(pilot, lambda: finished(app))
        model = app.session.model
        failed = model.counts["failed"]
        assert failed > 0

        await pilot.press("F")
        await settle(app, pilot)
        assert isinstance(app.screen, FailuresScreen)
        assert len(app.screen.results) == failed
        await pilot.press("escape")

        table = app.screen.query_one(ItemTable)
        await pilot.press("f", "f", "f")
        assert table.status_filter == "failed"
        await pilot.press("home", "enter")
        await settle(app, pilot)
        inspector = app.screen
        assert isinstance(inspector, InspectorScreen)
        key = inspector.result.key
        assert app.session.run is not None
        log = app.session.run.log_path
        records = log.read_bytes().count(f'"head":["{key[0]}","{key[1]}",'.encode())
        await pilot.press("r")
        await settle(app, pilot)
        await until(pilot, lambda: finished(app))
        assert isinstance(app.screen, RunScreen)
        assert log.read_bytes().count(f'"head":["{key[0]}","{key[1]}",'.encode()) == records + 1
        retried = (await app.session.records(*key))[-1]
        row = model.store.get(*key)
        assert row is not None and row.status == retried.status
        assert model.done == TICKET_COUNT

        await pilot.press("x")
        export = app.screen
        assert isinstance(export, ExportScreen)
        export.query_one("#format-csv", RadioButton).value = True
        await pilot.pause()
        target = tmp_path / "results.csv"
        export.query_one("#path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == TICKET_COUNT
    assert {row["id"] for row in rows} >= {key[1]}


async def test_quit_mid_run_keeps_it_resumable_and_history_resumes_it() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        # Long enough calls that the run cannot finish while keys are pressed on a busy box.
        await start(app, pilot, workers="4", sim_latency_ms="400")
        await until(pilot, lambda: len(app.session.model.store) >= 4)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("s")
        await until(pilot, lambda: not app.session.running)
    [summary] = list_runs()
    assert summary.state == "stopped" and summary.resumable
    assert 0 < summary.done < TICKET_COUNT

    again = make_app(first="history")
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert isinstance(again.screen, HistoryScreen)
        runs = again.screen.query_one("#runs", DataTable)
        assert runs.row_count == 1
        assert "resumable" in str(runs.get_row_at(0)[1])
        await pilot.press("r")
        await settle(again, pilot)
        assert isinstance(again.screen, RunScreen)
        await until(pilot, lambda: finished(again))
        model = again.session.model
        assert model.state == "finished"
        assert model.done == TICKET_COUNT == len(model.store)
    [summary] = list_runs()
    assert summary.state == "finished" and summary.done == TICKET_COUNT


async def test_a_cost_cap_is_shown_as_reached() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot, max_cost="0.001", sim_latency_ms="0")
        await until(pilot, lambda: finished(app))
        model = app.session.model
        assert model.state == "capped"
        assert [cap.cap for cap in model.caps_reached] == ["max_cost"]
        assert model.done < TICKET_COUNT
        status = app.screen.query_one(RunStatus)
        assert "cap reached: max_cost" in str(status.render())


async def test_an_engine_refusal_is_the_runs_failure_not_a_traceback() -> None:
    app = make_app(first="setup")
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await set_up(app, pilot)
        picker = screen.query_one("#models", SelectionList)
        picker.deselect("simulate:gpt-4o-mini")
        picker.select("openai:gpt-4o-mini")
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        await until(pilot, lambda: app.session.model.state == "failed")
        assert isinstance(app.screen, RunScreen)
        assert "no API key for openai" in (app.session.model.failure or "")
        assert "no API key for openai" in str(app.screen.query_one(RunStatus).render())
    # A bubbling message is seen once per node it reaches (the screen, then the app).
    started = {id(m): m for m in messages if isinstance(m, SetupScreen.StartRequested)}
    assert [m.config.models for m in started.values()] == [("openai:gpt-4o-mini",)]


async def test_quit_while_running_can_be_cancelled() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot, workers="2", sim_latency_ms="3000")  # still draining when looked at
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("k")
        assert isinstance(app.screen, RunScreen) and app.session.running
        await pilot.press("s")
        await until(pilot, lambda: app.session.model.state == "stopping")  # the engine says so
        await until(pilot, lambda: finished(app))
        assert app.session.model.state == "stopped"
