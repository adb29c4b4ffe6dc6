"""Past runs from the runs dir: open one to look at its results, resume it, or export it.

``list_runs`` reads each run's summary (rescanning a log only when the run was
killed), so it runs in a thread inside a worker and the screen draws at once.
A person keeps tens of runs, not millions, so Textual's ``DataTable`` is the
right table here. Acting on a run is the app's: the screen posts what was asked.
A run another process is executing shows as "running elsewhere" and cannot be
resumed here (the engine would refuse it too); a damaged one shows why.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine import RunSummary, list_runs
from tui import _format

COLUMNS: Final = ("run", "started", "state", "done/total", "cost", "models", "input")
"""Short columns first, so a long path is what a narrow terminal cuts."""


def state_of(summary: RunSummary) -> str:
    """The run's state as the table shows it."""
    if summary.holder is not None:
        return "running here" if summary.holder.is_this_process else "running elsewhere"
    if summary.problem is not None:
        return f"damaged: {summary.problem}"
    return f"{summary.state} (resumable)" if summary.resumable else summary.state


def row_for(summary: RunSummary) -> tuple[str, ...]:
    total = "?" if summary.total is None else f"{summary.total:,}"
    state = state_of(summary)
    return (
        summary.run_id,
        summary.started.replace("T", " ").removesuffix("+00:00"),
        state,
        f"{summary.done:,}/{total}",
        _format.money(summary.cost_usd),
        ", ".join(summary.models),
        summary.input,
    )


class _AboutRun(Message):
    def __init__(self, summary: RunSummary) -> None:
        super().__init__()
        self.summary = summary


class HistoryScreen(Screen[None]):
    """The runs under the runs root, newest first."""

    AUTO_FOCUS = "#runs"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="history.open"),
        Binding("r", "resume", "Resume", id="history.resume"),
        Binding("x", "export", "Export", id="history.export"),
        Binding("n", "app.new_run", "New run", id="history.new_run"),
        Binding("escape", "app.show_run", "Run screen", id="history.run"),
    ]

    class OpenRequested(_AboutRun):
        """Show this run's results in the run screen."""

    class ResumeRequested(_AboutRun):
        """Go on with this unfinished run."""

    class ExportRequested(_AboutRun):
        """Export this run's results."""

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.runs: list[RunSummary] = []

    def compose(self) -> ComposeResult:
        yield Static("Loading past runs…", id="history-summary", markup=False)
        table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True, id="runs")
        table.add_columns(*COLUMNS)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        self.runs = await asyncio.to_thread(list_runs)
        table = self.query_one("#runs", DataTable)
        table.clear()
        for summary in self.runs:
            table.add_row(*row_for(summary), key=summary.run_id)
        resumable = sum(summary.resumable for summary in self.runs)
        self.query_one("#history-summary", Static).update(
            f"{len(self.runs):,} run{'' if len(self.runs) == 1 else 's'} · "
            f"{resumable:,} resumable · enter opens, r resumes, x exports"
            if self.runs
            else "No runs yet: press n to set one up."
        )

    def _selected(self) -> RunSummary | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    @on(DataTable.RowSelected, "#runs")
    def action_open(self) -> None:
        summary = self._selected()
        if summary is not None:
            self.post_message(self.OpenRequested(summary))

    def action_resume(self) -> None:
        summary = self._selected()
        if summary is None:
            return
        if summary.holder is not None:
            here = summary.holder.is_this_process
            self.notify(
                f"Run {summary.run_id} is running "
                f"{'in this app' if here else f'elsewhere ({summary.holder})'}: "
                "it cannot be resumed until that ends.",
                severity="warning",
            )
            return
        if summary.problem is not None:
            self.notify(f"Run {summary.run_id} is damaged: {summary.problem}", severity="error")
            return
        if not summary.resumable:
            self.notify(f"Run {summary.run_id} finished: nothing to resume.", severity="warning")
            return
        self.post_message(self.ResumeRequested(summary))

    def action_export(self) -> None:
        summary = self._selected()
        if summary is not None:
            self.post_message(self.ExportRequested(summary))
