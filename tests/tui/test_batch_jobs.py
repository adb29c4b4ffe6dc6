"""The run screen's batch panel shows each provider job as the engine last reported it."""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult

from engine import BatchJob, BatchJobEnded, BatchJobProgressed, BatchJobSubmitted
from tests.tui._factories import FakeClock
from tests.tui._scenes import busy_run
from tui.widgets.batch_jobs import BatchJobs

pytestmark = pytest.mark.anyio


class PanelApp(App[None]):
    CSS = "Screen > * { height: auto; }"

    def __init__(self, panel: BatchJobs) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield self.panel


def job(job_id: str, state: str, counts: tuple[int, int, int]) -> BatchJob:
    now = time.time()
    return BatchJob(
        "openai:gpt-4o-mini", job_id, state, sum(counts), *counts,
        submitted_at=now - 125, expires_at=now + 3600,
    )  # fmt: skip


async def test_each_job_is_one_row_with_its_latest_state() -> None:
    model = busy_run(FakeClock())
    panel = BatchJobs(model)
    app = PanelApp(panel)
    async with app.run_test(size=(100, 8)) as pilot:
        panel.sync()
        await pilot.pause()
        assert not panel.display  # no jobs: no panel
        model.apply(BatchJobSubmitted(job("batch_1", "submitted", (0, 0, 10)), ("a",)))
        model.apply(BatchJobSubmitted(job("batch_2", "submitted", (0, 0, 5))))
        model.apply(BatchJobProgressed(job("batch_1", "running", (4, 1, 5))))
        model.apply(BatchJobEnded(job("batch_2", "expired", (3, 0, 0)), unfinished=2))
        panel.sync()
        await pilot.pause()
        assert panel.display
        assert [row[1] for row in panel.shown] == ["batch_1", "batch_2"]
        model.apply(BatchJobSubmitted(job("batch_3", "running", (0, 0, 1))))
        panel.sync()
        assert [row[1] for row in panel.shown] == ["batch_1", "batch_3", "batch_2"]  # going first
        assert panel.shown[2][5] == "-"  # an ended job expires no more
        rows = {row[1]: row for row in panel.shown}
        assert rows["batch_1"][:4] == ("openai", "batch_1", "running", "4/1/5")
        assert rows["batch_2"][2:4] == ("expired", "3/0/0")
        assert rows["batch_1"][4].startswith("2:0") and rows["batch_1"][5].startswith("59:")
