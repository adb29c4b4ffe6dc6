"""Provider batch jobs in the real app, on simulate's batch API (jobs kept in the run dir).

Jobs are made to run for ten minutes, and made to end when a test wants their results
(``end_jobs_now``), so no test races a job's clock on a busy machine; the waits are on the
app's model and workers, never a sleep. Each test runs the 60 sample tickets as batch requests.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from engine import Run, list_runs
from engine._run import SIM_BATCH_DIR
from engine.providers._sim_batch import JOB_FILE
from tests.tui._flows import SIZE, TICKET_COUNT, Notices, finished, settle, start, until
from tui import _format
from tui.app import BatchdeckApp, make_app
from tui.model import RunModel
from tui.screens.history import HistoryScreen
from tui.screens.quit import QuitScreen
from tui.screens.run import RunScreen
from tui.screens.stop import StopScreen
from tui.widgets.cost_meter import CostMeter

pytestmark = pytest.mark.anyio

BATCH = {"batch": "yes", "batch_size": "20", "poll_s": "0.1", "sim_latency_ms": "0"}
"""Three jobs of twenty tickets each, looked at every tenth of a second."""


async def start_jobs(app: BatchdeckApp, pilot: Pilot[None]) -> RunModel:
    """Start the tickets in three jobs that run until ``end_jobs_now``; the model once all
    three are submitted."""
    await start(app, pilot, sim_batch_s="600", **BATCH)
    model = app.session.model
    await until(pilot, lambda: model.open_batch_jobs == 3)
    return model


async def stop(app: BatchdeckApp, pilot: Pilot[None], key: str) -> None:
    """Press s, and answer the question about the jobs with ``key``."""
    await pilot.press("s")
    assert isinstance(app.screen, StopScreen)
    await pilot.press(key)


def end_jobs_now(run_dir: Path) -> None:
    """simulate's jobs of the run (in its run dir, as a provider keeps them) end now."""
    for path in (run_dir / SIM_BATCH_DIR).glob(f"*/{JOB_FILE}"):
        job = orjson.loads(path.read_bytes())
        job.update(created_at=job["created_at"] - 1000)
        path.write_bytes(orjson.dumps(job))


def submitted_rows(app: BatchdeckApp) -> int:
    store = app.session.model.store
    return sum(store.status_of(position) == "submitted" for position in range(len(store)))


async def test_items_of_a_job_are_submitted_and_its_money_held_until_results() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        model = await start_jobs(app, pilot)
        await until(pilot, lambda: model.batch_usd > 0)
        assert submitted_rows(app) == model.counts["submitted"] == TICKET_COUNT
        assert model.batch_usd == pytest.approx(model.reserved_usd)
        meter = app.screen.query_one(CostMeter)
        await until(pilot, lambda: _format.money(model.batch_usd) in str(meter.render()))
        assert "held by batch jobs" in str(meter.render())
        row = model.store[0]
        assert row.preview.startswith("in batch job ") and row.preview[13:] in model.batch_jobs

        assert app.session.run is not None
        end_jobs_now(app.session.run.run_dir)
        await until(pilot, lambda: finished(app), tries=1000)
        assert model.counts["ok"] == TICKET_COUNT and submitted_rows(app) == 0
        assert model.batch_usd == 0 and model.spent_usd > 0


async def test_stop_leaves_the_jobs_running_and_history_waits_on_them(notices: Notices) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        model = await start_jobs(app, pilot)
        await pilot.press("space")
        assert any("no batch job is submitted or looked at" in text for _, text in notices.seen)
        await stop(app, pilot, "enter")  # the default: leave them running
        await until(pilot, lambda: finished(app))
        assert model.finished is not None and model.finished.batch_jobs_left == 3
        assert submitted_rows(app) == TICKET_COUNT  # still at the provider

    [summary] = list_runs()
    assert summary.batch_jobs == 3
    end_jobs_now(summary.run_dir)
    again = make_app(first="history")
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert isinstance(again.screen, HistoryScreen)
        runs = again.screen.query_one("#runs", DataTable)
        assert str(runs.get_row_at(0)[1]) == "waiting on 3 provider jobs"
        await pilot.press("r")  # re-attaches: the same jobs, their items submitted again
        await settle(again, pilot)
        assert isinstance(again.screen, RunScreen)
        model = again.session.model
        await until(pilot, lambda: finished(again), tries=1000)
        assert set(model.batch_jobs) == {
            job.job_id for job in Run.open(summary.run_dir).batch_jobs()
        }
        assert model.counts["ok"] == TICKET_COUNT == model.done
    [summary] = list_runs()
    assert summary.state == "finished" and summary.batch_jobs == 0


async def test_stop_can_cancel_the_jobs_and_their_items_stay_pending(notices: Notices) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start_jobs(app, pilot)
        await stop(app, pilot, "c")
        await until(pilot, lambda: any("Cancel asked for 3" in text for _, text in notices.seen))
        model = app.session.model
        assert [job.state for job in model.batch_jobs.values()] == ["cancelling"] * 3
        run = app.session.run
        assert run is not None
    resumed = Run.open(run.run_dir).for_resume(poll_s=0.1)
    finished_again = await resumed.execute(detach=True)  # sees them cancelled, submits anew
    assert finished_again.ok == 0 and finished_again.batch_jobs_left == 3
    states = [job.state for job in resumed.batch_jobs()]
    assert states.count("cancelled") == 3 and len(states) == 6


async def test_quitting_says_the_jobs_keep_running() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await start_jobs(app, pilot)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        text = str(app.screen.query_one("#quit-dialog Static").render())
        assert "its 3 batch jobs keep running at the provider" in text
        await pilot.press("s")
        await until(pilot, lambda: not app.session.running)
    steps = app.next_steps()
    assert steps is not None and "3 batch jobs left running at the provider" in steps
    [summary] = list_runs()
    assert summary.batch_jobs == 3 and summary.resumable
