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
        "2026-11-22 15:00:00",
        "capped (resumable)",
        "5/60",
        "$0.0012",
        "simulate:gpt-4o-mini",
        "sample_data/tickets.jsonl",
    )
    assert row_for(_summary("x", "finished", 60, None, 0))[2:5] == ("finished", "60/?", "$0")


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
            assert row_for(summary)[2] == "running elsewhere"
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
    assert row_for(damaged)[2] == "damaged: line 4 of log.jsonl is corrupt"
