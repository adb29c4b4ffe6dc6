"""History: past runs listed from the runs dir; open one, resume one, export one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable

from engine import Run, RunSummary, log, make_config
from engine._paths import runs_root
from tests.tui._flows import SIZE, TICKET_COUNT, TICKETS, finished, settle, until
from tui.app import make_app
from tui.screens import history
from tui.screens.export import ExportScreen
from tui.screens.history import HistoryScreen, row_for
from tui.screens.run import RunScreen

pytestmark = pytest.mark.anyio


async def _past_run(name: str, **caps: object) -> Run:
    config = make_config(input=str(TICKETS), sim={"latency_ms": 0}, **caps)
    run = Run.create(config, runs_root() / name)
    await run.execute()
    return run


def _summary(run_id: str, state: str, done: int, total: int | None, cost: float) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        run_dir=Path("/runs") / run_id,
        started="2026-11-22T15:00:00+00:00",
        input="sample_data/tickets.jsonl",
        models=("simulate:gpt-4o-mini",),
        done=done,
        total=total,
        ok=done,
        failed=0,
        skipped=0,
        cost_usd=cost,
        state=state,
    )


def test_a_row_says_what_a_person_needs_to_pick_a_run() -> None:
    row = row_for(_summary("20261122-150000-aaaa", "capped", 5, 60, 0.0012))
    assert row == (
        "20261122-150000-aaaa",
        "capped (resumable)",
        "5/60",
        "$0.0012",
        "tickets.jsonl",
        "2026-11-22 15:00",
        "simulate:gpt-4o-mini",
    )
    assert row_for(_summary("y", "finished", 1, 1, 0.000021))[3] == "$0.000021"
    assert row_for(_summary("x", "finished", 60, None, 0))[1:4] == ("finished", "60/?", "$0")


async def test_history_lists_runs_and_opens_one_with_its_results() -> None:
    await _past_run("20261122-150000-aaaa")
    await _past_run("20261122-150100-bbbb", max_items=5)
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        assert [summary.state for summary in screen.runs] == ["capped", "finished"]
        table = screen.query_one("#runs", DataTable)
        assert table.row_count == 2
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen)
        model = app.session.model
        await until(pilot, lambda: model.state == "finished")
        assert len(model.store) == TICKET_COUNT == model.counts["ok"]
        assert model.run_id == "20261122-150000-aaaa"
        assert not app.session.running


async def test_a_past_run_with_a_damaged_log_opens_as_failed_naming_the_line(
    tmp_path: Path,
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f'{{"id": "{n}", "context": "item {n}"}}\n' for n in range(4000)))
    config = make_config(input=str(items), sim={"latency_ms": 0})
    run = Run.create(config, runs_root() / "20261122-150000-aaaa")
    await run.execute()
    lines = run.log_path.read_bytes().splitlines(keepends=True)
    damaged = len(lines) - 5  # past the first read, so History still lists the run
    lines[damaged] = lines[damaged].replace(b'"result"', b'"resulX"')  # its checksum fails
    written = run.log_path.stat()
    run.log_path.write_bytes(b"".join(lines))
    os.utime(run.log_path, ns=(written.st_atime_ns, written.st_mtime_ns))  # bit rot
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: app.session.model.state == "failed")
        failure = app.session.model.failure
        assert failure is not None and f"line {damaged + 1} is damaged" in failure, failure


async def test_resume_from_history_goes_on_from_where_a_capped_run_stopped() -> None:
    await _past_run("20261122-150100-bbbb", max_items=5)
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        await until(pilot, lambda: finished(app))
        model = app.session.model
        assert model.run_id == "20261122-150100-bbbb"
        # max_items counts per invocation, as on the command line: the resume runs the rest.
        assert model.state == "finished"
        assert model.done == 60 == len(model.store)


async def test_a_finished_run_is_not_resumed_and_export_opens_for_it() -> None:
    await _past_run("20261122-150000-aaaa")
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, HistoryScreen) and not app.session.running
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.run.run_id == "20261122-150000-aaaa"


def test_snapshot_of_the_history_screen(
    snap_compare: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [
        _summary("20261122-151500-cccc", "stopped", 23, 60, 0.0041),
        _summary("20261122-150100-bbbb", "capped", 5, 60, 0.0012),
        _summary("20261122-150000-aaaa", "finished", 60, 60, 0.0133),
    ]
    monkeypatch.setattr(history, "list_runs", lambda: runs)

    async def loaded(pilot: object) -> None:
        await settle(pilot.app, pilot)  # type: ignore[attr-defined, arg-type]

    assert snap_compare(  # type: ignore[operator]
        make_app(first="history"), terminal_size=SIZE, run_before=loaded
    )


async def test_history_from_a_screen_over_the_run_closes_it_and_opens_runs_again() -> None:
    await _past_run("20261122-150000-aaaa")
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("F")
        await settle(app, pilot)
        assert len(app.screen_stack) == 3
        await app.run_action("app.history")
        await settle(app, pilot)
        assert isinstance(app.screen, HistoryScreen) and len(app.screen_stack) == 2
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen) and len(app.screen_stack) == 2
        await until(pilot, lambda: app.session.model.state == "finished")


async def test_a_run_another_process_holds_shows_running_elsewhere_and_is_not_resumed() -> None:
    run = await _past_run("20261122-150100-bbbb", max_items=5)
    with _held_elsewhere(run.run_dir) as holder:
        app = make_app(first="history")
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            [summary] = screen.runs
            assert summary.holder is not None and summary.holder.pid == holder.pid
            assert not summary.resumable
            assert row_for(summary)[1] == "running elsewhere"
            await pilot.press("r")
            await settle(app, pilot)
            assert isinstance(app.screen, HistoryScreen) and not app.session.running
    assert run.holder() is None and log.scan(run.log_path).run_state == "capped"


@contextmanager
def _held_elsewhere(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run's lock for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.communicate(timeout=30)  # closing its stdin ends it, and its lock with it


HOLD_LOCK = """
import sys
from pathlib import Path
from engine._lock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()
"""
"""Another process that holds a run's lock until its stdin closes."""


def test_a_damaged_run_says_why_and_is_not_resumable() -> None:
    damaged = replace(
        _summary("20261122-150000-dddd", "damaged", 0, None, 0.0),
        problem="line 4 of log.jsonl is corrupt",
    )
    assert not damaged.resumable
    assert row_for(damaged)[1] == "damaged: line 4 of log.jsonl is corrupt"


async def test_x_after_h_exports_the_run_being_viewed_not_the_first_row() -> None:
    await _past_run("20261122-150000-aaaa")
    await _past_run("20261122-150100-bbbb", max_items=5)
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "enter")  # the older run
        await settle(app, pilot)
        await until(pilot, lambda: app.session.model.state == "finished")
        await pilot.press("h")
        await settle(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.run.run_id == "20261122-150000-aaaa"


async def test_columns_fit_their_rows_on_first_open_and_costs_stay_fixed_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = [
        replace(
            _summary("20261122-151500-cccc", "stopped", 23, 60, 0.000021),
            input="/home/someone/a/long/folder/of/inputs/tickets-of-november.jsonl",
        ),
        _summary("20261122-150000-aaaa", "finished", 60, 60, 0.0133),
    ]
    monkeypatch.setattr(history, "list_runs", lambda: runs)
    app = make_app(first="history")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#runs", DataTable)
        rows = [row_for(summary) for summary in runs]
        for index, column in enumerate(table.columns.values()):
            assert column.width >= min(history.WIDEST, max(len(row[index]) for row in rows))
        text = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "$0.000021" in text and "e-05" not in text
        assert "tickets-of-november.jsonl" in str(table.get_row_at(0)[4])
        assert runs[0].input in str(app.screen.query_one("#history-detail").render())


async def test_a_finished_past_run_shows_the_time_it_took() -> None:
    await _past_run("20261122-150000-aaaa")
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: app.session.model.state == "finished")
        assert app.session.model.elapsed_s > 0


async def test_the_run_screen_of_a_run_another_process_holds_says_so_and_by_whom() -> None:
    run = await _past_run("20261122-150100-bbbb", max_items=5)
    with _held_elsewhere(run.run_dir) as holder:
        app = make_app(first="history")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("enter")
            await until(pilot, lambda: app.session.model.finished is not None)
            await settle(app, pilot)
            line = "\n".join(s.text for s in app.screen._compositor.render_strips())
            assert "RUNNING ELSEWHERE" in line and f"pid {holder.pid}" in line
            assert "STOPPED" not in line and "CAPPED" not in line


async def test_resuming_a_run_that_another_process_took_meanwhile_says_what_to_do_here() -> None:
    run = await _past_run("20261122-150100-bbbb", max_items=5)
    app = make_app(first="history")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)  # listed while nobody held it
        with _held_elsewhere(run.run_dir) as holder:
            await pilot.press("r")
            await until(pilot, lambda: app.session.model.state == "failed")
            failure = app.session.model.failure or ""
            assert f"pid {holder.pid}" in failure and "--wait" not in failure
            assert "History" in failure
