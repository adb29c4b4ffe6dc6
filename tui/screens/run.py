"""The live run: item table, cost meter, progress, rates, per-model and rate-limit tables.

The screen owns the one timer that moves the UI (ARCHITECTURE.md, "The app": apply
engine events from one ``set_interval`` at 10-20 Hz, never once per event). Each tick drains
the ``EventBuffer`` the engine has been appending to, folds the batch into the
``RunModel``, and lets each widget repaint if what it shows moved. Notices the
model collected (a cap reached, a torn log, a failed run) become notifications,
so engine trouble reaches the user as a sentence, never a traceback.

Its keys steer the run through the ``RunSession`` it was given (pause, stop,
workers) and open the screens about the run (inspector, failures, export, compare).
What those need from the log is read in a thread inside a worker, so the
screen keeps drawing; the screens they open post their requests (retry) to the
app, which owns the session.
"""

from __future__ import annotations

import time
from functools import partial
from typing import ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from tui.screens.compare import CompareScreen
from tui.screens.export import ExportScreen
from tui.screens.failures import FailuresScreen
from tui.screens.inspector import InspectorScreen
from tui.screens.stop import StopChoice, StopScreen
from tui.session import RunSession
from tui.widgets._panel import ModelSync
from tui.widgets.batch_jobs import BatchJobs
from tui.widgets.cost_meter import CostMeter
from tui.widgets.flash import Flash
from tui.widgets.item_table import ItemTable
from tui.widgets.model_breakdown import ModelBreakdown
from tui.widgets.progress_line import ProgressLine
from tui.widgets.rate_limits import RateLimits
from tui.widgets.run_status import RunStatus
from tui.widgets.stats_panel import StatsPanel
from tui.widgets.throughput import ThroughputPanel

REFRESH_HZ: Final = 10.0
FIGURES_EVERY_S: Final = 0.3
"""The panels of figures repaint at most this often while a run pours in: a person reads
them no faster, and their repaints would take the engine's time (the item table and the
run's state still follow every tick)."""
SHORT_ROWS: Final = 32
"""Below this many rows the screen is laid out for a short terminal."""
_NO_RUN: Final = "No run yet: press n to set one up, or h to open one from History."


class RunScreen(Screen[None]):
    """Shows the session's ``RunModel``, fed from the ``EventBuffer`` the engine publishes into."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause", "Pause", id="run.pause"),
        Binding("space", "resume", "Resume", id="run.resume"),
        Binding("s", "stop", "Stop", id="run.stop"),
        Binding("plus", "workers(1)", "Workers", id="run.more_workers"),
        Binding("minus", "workers(-1)", "Fewer workers", show=False, id="run.fewer_workers"),
        Binding("F", "failures", "Failures", id="run.failures"),
        Binding("slash", "find", "Find id", id="run.find"),
        Binding("escape", "close_find", "Close find", show=False, id="run.close_find"),
        Binding("x", "export", "Export", id="run.export"),
        Binding("c", "compare", "Compare", id="run.compare"),
        Binding("h", "app.history", "History", id="run.history"),
        Binding("n", "app.new_run", "New", id="run.new_run"),
    ]

    def __init__(
        self,
        session: RunSession,
        *,
        refresh_hz: float = REFRESH_HZ,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.session = session
        self.model = session.model
        self.events = session.events
        self.comparison = session.comparison
        self._refresh_hz = refresh_hz
        self._figures: list[ModelSync] = []
        self._figures_at = -FIGURES_EVERY_S
        self._state_shown = self.model.state
        """The run state the footer's keys were last checked against."""

    def compose(self) -> ComposeResult:
        model = self.model
        yield RunStatus(model, id="run-status")
        yield ProgressLine(model, id="progress")
        with Horizontal(id="summary"):
            yield CostMeter(model, id="cost")
            yield StatsPanel(model, id="stats")
            yield ThroughputPanel(model, id="throughput")
        yield ItemTable(model.store, id="items")
        with Vertical(id="details"):
            yield ModelBreakdown(model, id="models")
            yield RateLimits(model, id="rate-limits")
            yield BatchJobs(model, id="batch-jobs")
        yield Input(placeholder="an id, or part of one ⏎  (esc closes)", id="find")
        yield Flash(id="flash")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "#cost": "Cost",
            "#stats": "Progress",
            "#throughput": "Rates",
            "#models": "Models",
            "#rate-limits": "Rate limits",
            "#batch-jobs": "Batch jobs",
        }
        for selector, title in titles.items():
            self.query_one(selector).border_title = title
        synced = [widget for widget in self.query("*") if isinstance(widget, ModelSync)]
        self._status = self.query_one(RunStatus)
        self._figures = [widget for widget in synced if not isinstance(widget, RunStatus)]
        self._table = self.query_one(ItemTable)
        self._table.focus()
        self.pump()
        self.set_interval(1 / self._refresh_hz, self.pump)

    def on_resize(self) -> None:
        """A short terminal (80x24) puts the per-model and rate-limit panels side by side,
        so the item table keeps room for rows."""
        self.set_class(self.size.height < SHORT_ROWS, "-short")

    def pump(self) -> None:
        """Fold what the engine published since the last tick and repaint what moved."""
        events = self.events.drain()
        self.model.apply_all(events)
        if self.comparison is not None:
            self.comparison.apply_all(events)
        self._status.sync()
        now = time.monotonic()
        if now - self._figures_at >= FIGURES_EVERY_S or not self.session.running:
            self._figures_at = now
            for widget in self._figures:
                widget.sync()
        self._table.refresh_rows()
        for notice in self.model.drain_notices():
            self.notify(notice.message, severity=notice.severity)
        if self.model.state != self._state_shown:
            self._state_shown = self.model.state
            self.refresh_bindings()
        if bool(self.model.batch_jobs) != self.has_class("-batch"):
            self._fit_batch_jobs()

    def _fit_batch_jobs(self) -> None:
        """A run with batch jobs has a line more in its summary panels (what its jobs hold,
        how many items are submitted); one whose every model goes batch makes no call the
        rate-limit panel could tell of, so the batch panel takes its room."""
        batch = bool(self.model.batch_jobs)
        self.set_class(batch, "-batch")
        run = self.session.run
        online = run is None or not set(run.config.models) <= run.config.batch_models
        self.query_one(RateLimits).display = online or not batch

    # -- steering the run ----------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Space pauses a going run and resumes a paused one: the footer names which."""
        if action == "close_find":
            return self.query_one("#find", Input).display
        if action in ("pause", "resume"):
            run = self.session.run
            paused = run is not None and run.paused and self.session.running
            return paused == (action == "resume")
        return True

    def action_pause(self) -> None:
        self._toggle_pause()

    def action_resume(self) -> None:
        self._toggle_pause()

    def _toggle_pause(self) -> None:
        if not self.session.running:
            self.notify("No run is going.", severity="warning")
            return
        self.session.toggle_pause()
        run = self.session.run
        if run is not None and run.paused and (run.config.batch_models or self.model.batch_jobs):
            self.notify(
                "Paused: no batch job is submitted or looked at until you resume; "
                "jobs already submitted keep running at the provider."
            )
        self._figures_at = -FIGURES_EVERY_S
        self.pump()

    def action_stop(self) -> None:
        if not self.session.running:
            self.notify("No run is going.", severity="warning")
            return
        jobs = self.model.open_batch_jobs
        if jobs and not self.session.stopping:
            self.app.push_screen(StopScreen(jobs), self._stop_chosen)
            return
        self._stop("Stopping… calls in flight finish first; the run stays resumable.")

    def _stop_chosen(self, choice: StopChoice | None) -> None:
        if choice == "leave":
            self._stop(
                "Stopping… the batch jobs keep running at the provider: resume the run "
                "(History, r) to fetch their results."
            )
        elif choice == "cancel_jobs":
            self._stop("Stopping… then the batch jobs are cancelled at the provider.")
            self._cancel_jobs()

    def _stop(self, message: str) -> None:
        self.session.stop()
        self.notify(message)
        self._figures_at = -FIGURES_EVERY_S
        self.pump()

    @work(group="cancel-jobs", exclusive=True, exit_on_error=False)
    async def _cancel_jobs(self) -> None:
        asked = await self.session.cancel_batch_jobs()
        refused = [f"{job}: {why}" for job, why in asked if why is not None]
        self.model.cancel_asked(job for job, why in asked if why is None)
        cancelled = len(asked) - len(refused)
        if cancelled:
            self.notify(
                f"Cancel asked for {cancelled:,} batch job{'s' if cancelled != 1 else ''}: "
                "resuming the run fetches what they finished; the rest goes out again."
            )
        for line in refused:
            self.notify(f"Not cancelled: {line}", severity="error")

    def action_workers(self, delta: int) -> None:
        count = self.session.add_workers(delta)
        if count is None:
            self.notify("No run is going." if self.session.run else _NO_RUN, severity="warning")
        else:
            # one note for a run of presses, saying the latest count, not a stack of toasts
            self.query_one(Flash).show(f"Workers: {count}", self.app.NOTIFICATION_TIMEOUT)

    # -- finding an item ------------------------------------------------------------

    def action_find(self) -> None:
        find = self.query_one("#find", Input)
        find.display = True
        find.focus()
        self.refresh_bindings()

    def action_close_find(self) -> None:
        find = self.query_one("#find", Input)
        find.display = False
        self._table.focus()
        self.refresh_bindings()

    @on(Input.Submitted, "#find")
    def _find(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.action_close_find()
            return
        if self._table.jump_to(text):
            self.action_close_find()
        else:
            self.notify(f"No item id contains {text!r}.", severity="warning")

    # -- screens about the run -----------------------------------------------------

    @on(ItemTable.RowSelected, "#items")
    def _inspect(self, event: ItemTable.RowSelected) -> None:
        if self.session.run is None:
            return
        self._open_inspector(event.row.model, event.row.id)

    @work(group="inspect", exclusive=True, exit_on_error=False)
    async def _open_inspector(self, model: str, item_id: str) -> None:
        run = self.session.run
        assert run is not None
        records = await self.session.records(model, item_id)
        if not records:
            self.notify(f"{item_id} ({model}) has no result yet: it is still in flight.")
            return
        await self.app.push_screen(
            InspectorScreen(
                records[-1],
                config=run.config,
                records=records,
                earlier=await self.session.earlier_records(model, item_id),
                store=self.model.store,
                reload=partial(self.session.records, model, item_id),
            )
        )

    def action_failures(self) -> None:
        if self.session.run is None:
            self.notify(_NO_RUN, severity="warning")
            return
        self._open_failures()

    @work(group="failures", exclusive=True, exit_on_error=False)
    async def _open_failures(self) -> None:
        results = await self.session.failures()
        await self.app.push_screen(
            FailuresScreen(results, store=self.model.store, reload=self.session.failures)
        )

    def action_export(self) -> None:
        run = self.session.run
        if run is None:
            self.notify(_NO_RUN, severity="warning")
            return
        self.app.push_screen(ExportScreen(run))

    def action_compare(self) -> None:
        run = self.session.run
        if run is None:
            self.notify(_NO_RUN, severity="warning")
            return
        self.app.push_screen(CompareScreen(run, self.comparison))
