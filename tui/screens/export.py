"""Write a run's results to a JSONL or CSV file, through the engine's ``export_run``.

Reading a big log and writing its rows takes seconds, so the export runs in a
thread worker and the screen stays live. The engine's ``export_to_file`` writes
a temporary file beside the target and renames it into place, so a failed
export never leaves a half-written file or clobbers an earlier one, and it
refuses a path that is the run's input, its log or inside a run dir. What users
get wrong (a missing directory, no permission, a path that is a directory) and
what the engine refuses come back as one sentence on the screen; anything else
is a bug and is left to crash loudly. CSV text cells that a spreadsheet would
run as formulas are made inert unless "Raw CSV cells" is ticked.

The path follows the format (``<dir>/<run id>.jsonl`` <-> ``.csv``) until the
user types their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
)
from textual.worker import Worker, WorkerState

from engine import (
    BatchdeckError,
    ExportChoice,
    ExportFormat,
    Run,
    StatusFilter,
    export_to_file,
    exports_dir,
)

FORMATS: Final[tuple[tuple[ExportFormat, str], ...]] = (
    ("jsonl", "JSONL"),
    ("csv", "CSV"),
    ("parquet", "Parquet"),
)
WHICH: Final[tuple[tuple[StatusFilter, str], ...]] = (
    ("all", "All"),
    ("ok", "OK"),
    ("truncated", "Truncated"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
)


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    path: Path
    rows: int | None
    """Rows written; None when the export failed."""
    problem: str | None = None
    """Why it failed, in one line."""


def write_export(
    run: Run, path: Path, fmt: ExportFormat, status: StatusFilter, *, raw_cells: bool = False
) -> ExportOutcome:
    """Export ``run`` to ``path`` (see the module's docstring); blocking."""
    try:
        choice = ExportChoice(status, raw_cells=raw_cells)
        return ExportOutcome(path, export_to_file(run, path, fmt, choice))
    except OSError as exc:
        return ExportOutcome(path, None, f"cannot write {path}: {exc.strerror}")
    except BatchdeckError as exc:
        return ExportOutcome(path, None, str(exc))


class ExportScreen(Screen[None]):
    """Pick a format, which items and a path; ``Exported`` is posted after each export."""

    CSS_PATH = "screens.tcss"
    AUTO_FOCUS = "#format"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back", id="export.back"),
        Binding("ctrl+s", "export", "Export", id="export.export"),
    ]

    exporting = var(False, init=False)
    """A worker is writing; another export waits until it is done."""

    class Exported(Message):
        """Rows of the run were written to ``path``."""

        def __init__(self, path: Path, rows: int) -> None:
            super().__init__()
            self.path = path
            self.rows = rows

    def __init__(
        self,
        run: Run,
        *,
        directory: Path | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        """``directory`` is where the default path points (the run's ``exports`` folder, in
        its run dir, if None)."""
        super().__init__(name=name, id=id)
        self.run = run
        self.directory = exports_dir(run) if directory is None else directory
        self._format: ExportFormat = FORMATS[0][0]
        self._status: StatusFilter = WHICH[0][0]
        self._path_edited = False

    def default_path(self, fmt: ExportFormat) -> Path:
        return self.directory / f"{self.run.run_id}.{fmt}"

    def compose(self) -> ComposeResult:
        with Vertical(id="export-form") as form:
            form.border_title = f"Export run {self.run.run_id}"
            with Horizontal(id="export-choices"):
                with Vertical():
                    yield Label("Format")
                    with RadioSet(id="format"):
                        for index, (fmt, label) in enumerate(FORMATS):
                            yield RadioButton(label, value=index == 0, id=f"format-{fmt}")
                with Vertical():
                    yield Label("Items")
                    with RadioSet(id="which"):
                        for index, (status, label) in enumerate(WHICH):
                            yield RadioButton(label, value=index == 0, id=f"which-{status}")
            yield Label("Path")
            yield Input(str(self.default_path(self._format)), id="path")
            yield Checkbox("Raw CSV cells (keep = + - @ at the start of a cell)", id="raw-cells")
            with Horizontal(id="export-actions"):
                yield Button("Export", id="export", variant="primary")
            yield Static(id="export-result", markup=False)
        yield Footer()

    @on(RadioSet.Changed, "#format")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        self._format = FORMATS[event.index][0]
        if not self._path_edited:
            self.query_one("#path", Input).value = str(self.default_path(self._format))

    @on(RadioSet.Changed, "#which")
    def _which_changed(self, event: RadioSet.Changed) -> None:
        self._status = WHICH[event.index][0]

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        self._path_edited = event.value != str(self.default_path(self._format))

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        if self.exporting:
            return
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self._say("Give a file name to write to.", problem=True)
            return
        path = self.directory / Path(text).expanduser()  # an absolute path stays as it is
        if not path.name:
            self._say("Give a file name to write to.", problem=True)
            return
        self.exporting = True
        self._say(f"Exporting to {path} …", problem=False)
        raw_cells = self.query_one("#raw-cells", Checkbox).value
        self._export(path, self._format, self._status, raw_cells)

    @work(thread=True, group="export")
    def _export(
        self, path: Path, fmt: ExportFormat, status: StatusFilter, raw_cells: bool
    ) -> ExportOutcome:
        return write_export(self.run, path, fmt, status, raw_cells=raw_cells)

    @on(Worker.StateChanged)
    def _export_done(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "export" or event.state != WorkerState.SUCCESS:
            return
        self.exporting = False
        outcome = event.worker.result
        assert isinstance(outcome, ExportOutcome)
        if outcome.rows is None:
            self._say(f"Export failed: {outcome.problem}", problem=True)
            self.notify(f"Export failed: {outcome.problem}", severity="error")
            return
        plural = "" if outcome.rows == 1 else "s"
        message = f"Wrote {outcome.rows:,} row{plural} to {outcome.path}"
        self._say(message, problem=False)
        self.notify(message)
        self.post_message(self.Exported(outcome.path, outcome.rows))

    def watch_exporting(self, exporting: bool) -> None:
        self.query_one("#export", Button).disabled = exporting

    def _say(self, text: str, *, problem: bool) -> None:
        line = self.query_one("#export-result", Static)
        line.update(text)
        line.set_class(problem, "-problem")
