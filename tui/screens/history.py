"""Past runs from the runs dir: open one to look at its results, resume it, or export it.

``list_runs`` reads each run's summary (rescanning a log only when the run was
killed), so it runs in a thread inside a worker and the screen draws at once.
A person keeps tens of runs, not millions, so Textual's ``DataTable`` is the
right table here. Acting on a run is the app's: the screen posts what was asked.
A run another process is executing shows as "running elsewhere" and cannot be
resumed here (the engine would refuse it too); a damaged one shows why; one that
left provider batch jobs running shows as waiting on them (resuming it fetches
their results).

The cursor starts on the run the app shows, so ``x`` right after ``h`` exports
that run; each key acts on the highlighted row by its key, never by its index.
The input column shows the file's name (the line under the table has its whole
path), and the columns are sized from the rows once they are read, so the
table never draws with the widths its headers alone would give.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePath
from typing import ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import RowDoesNotExist

from engine import RunSummary, list_runs
from tui import _format

COLUMNS: Final = ("run", "state", "done/total", "cost", "input", "started", "models")
"""What tells runs apart first (the run id holds when it started), so a narrow terminal
cuts the start time and the models, never the cost."""
WIDEST: Final = 40
"""No column grows wider than this: a long state or list of models is cut, not the rest."""


def state_of(summary: RunSummary) -> str:
    """The run's state as the table shows it."""
    if summary.holder is not None:
        return "running here" if summary.holder.is_this_process else "running elsewhere"
    if summary.problem is not None:
        return f"damaged: {summary.problem}"
    if summary.batch_jobs and summary.resumable:
        jobs = "job" if summary.batch_jobs == 1 else "jobs"
        return f"waiting on {summary.batch_jobs:,} provider {jobs}"
    return f"{summary.state} (resumable)" if summary.resumable else summary.state


def row_for(summary: RunSummary) -> tuple[str, ...]:
    total = "?" if summary.total is None else f"{summary.total:,}"
    state = state_of(summary)
    return (
        summary.run_id,
        state,
        f"{summary.done:,}/{total}",
        _format.money(summary.cost_usd),
        PurePath(summary.input).name or summary.input,
        summary.started.replace("T", " ")[:16],  # to the minute: the run id has the seconds
        ", ".join(summary.models),
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
        Binding("c", "compare", "Compare", id="history.compare"),
        Binding("n", "app.new_run", "New run", id="history.new_run"),
        Binding("escape", "app.show_run", "Run screen", id="history.run"),
    ]

    class OpenRequested(_AboutRun):
        """Show this run's results in the run screen."""

    class ResumeRequested(_AboutRun):
        """Go on with this unfinished run."""

    class ExportRequested(_AboutRun):
        """Export this run's results."""

    class CompareRequested(_AboutRun):
        """Show this run's models side by side."""

    def __init__(
        self, *, current: str | None = None, name: str | None = None, id: str | None = None
    ) -> None:
        """``current``: the id of the run the app shows, where the cursor starts."""
        super().__init__(name=name, id=id)
        self.runs: list[RunSummary] = []
        self.current = current

    def compose(self) -> ComposeResult:
        yield Static("Loading past runs…", id="history-summary", markup=False)
        yield DataTable(cursor_type="row", zebra_stripes=True, id="runs")
        yield Static(id="history-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        self.runs = await asyncio.to_thread(list_runs)
        rows = [row_for(summary) for summary in self.runs]
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        for index, label in enumerate(COLUMNS):
            widest = max((len(row[index]) for row in rows), default=0)
            table.add_column(label, width=min(WIDEST, max(len(label), widest)), key=label)
        for summary, row in zip(self.runs, rows, strict=True):
            table.add_row(*row, key=summary.run_id)
        if self.current is not None:
            try:
                table.move_cursor(row=table.get_row_index(self.current), animate=False)
            except RowDoesNotExist:
                pass
        self._show_detail()
        resumable = sum(summary.resumable for summary in self.runs)
        self.query_one("#history-summary", Static).update(
            f"{len(self.runs):,} run{'' if len(self.runs) == 1 else 's'} · "
            f"{resumable:,} resumable · enter opens, r resumes, x exports"
            if self.runs
            else "No runs yet: press n to set one up."
        )

    def _selected(self) -> RunSummary | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or not table.is_valid_row_index(table.cursor_row):
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((summary for summary in self.runs if summary.run_id == key), None)

    @on(DataTable.RowHighlighted, "#runs")
    def _show_detail(self) -> None:
        summary = self._selected()
        detail = self.query_one("#history-detail", Static)
        if summary is None:
            detail.update("")
            return
        jobs = summary.batch_jobs
        waiting = (
            f"\n{jobs:,} provider batch job{'s' if jobs != 1 else ''} left running: "
            "r resumes the run and fetches their results"
            if jobs and summary.resumable
            else ""
        )
        detail.update(
            f"input {summary.input}\nmodels {', '.join(summary.models)}\n"
            f"{summary.ok:,} ok · {summary.failed:,} failed · {summary.skipped:,} skipped · "
            f"{_format.money(summary.cost_usd)} · {summary.run_dir}{waiting}"
        )

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

    def action_compare(self) -> None:
        summary = self._selected()
        if summary is not None:
            self.post_message(self.CompareRequested(summary))
