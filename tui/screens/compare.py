"""The Compare screen: which of a run's models to use, on this data, at what price.

At the top the per-model scoreboard of the first step that has several models (or a
judge): items answered, judge wins and win rate, agreement with the other models,
mean cost and latency, cost per win; the figures are the engine's ``Scoreboard``,
the same ``batchdeck compare RUN`` prints. Below, one row per item with each model's
answer side by side; the highlighted item's answers, their differing fields and the
judge's verdict, confidence and reasoning fill the pane under it. ``d`` keeps only
the items the models disagree on.

It reads the run's log (``item_rows``), not the event stream: the scoreboard needs
every lane's answer and parsed fields, which events do not carry. While the run goes
the log is folded again in a thread once a second (``REFOLD_EVERY_S``), or less often
when a fold takes long: measured, a fold of 3,000 items (9,000 results) takes ~1 s on a
loaded 2-core box, so such a run refreshes every ~5 s, with a fifth of a core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import RowDoesNotExist

from engine import (
    ItemResult,
    ItemRow,
    ModelScore,
    Run,
    Scoreboard,
    StepScores,
    item_rows,
    split_lane,
)
from tui import _format

REFOLD_EVERY_S: Final = 1.0
FOLD_SHARE_BOUND: Final = 5
"""Between two folds at least this many times the last fold's duration: folding a big log
takes at most a fifth of one core while the run goes."""
ANSWER_WIDTH: Final = 40
"""An answer's column in the item table at most this wide; the pane below shows it whole."""
SCORE_COLUMNS: Final = ("model", "answered", "wins", "win %", "agree", "mean $", "latency",
                        "$/win")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comparison:
    """A run's log folded once: the scores of every compared step, and its items."""

    scores: tuple[StepScores, ...]
    rows: tuple[ItemRow, ...]


def fold(run: Run) -> Comparison:
    board = Scoreboard(run.config)
    rows = []
    for row in item_rows(run):
        board.add(row)
        rows.append(row)
    return Comparison(board.scores(), tuple(rows))


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item as the screen shows it: the step's answers by model, and its judges' verdicts."""

    id: str
    answers: dict[str, ItemResult]
    verdicts: tuple[ItemResult, ...]

    @property
    def disagrees(self) -> bool:
        ok = {(r.output or "").strip() for r in self.answers.values() if r.status == "ok"}
        return len(ok) > 1

    @property
    def verdict(self) -> dict[str, Any]:
        first = next((v.parsed for v in self.verdicts if v.status == "ok"), None)
        return first if isinstance(first, dict) else {}


def item_view(row: ItemRow, step: StepScores) -> ItemView:
    models = {score.model for score in step.models}
    answers: dict[str, ItemResult] = {}
    for result in row.results:
        lane_step, model = split_lane(result.model)
        if lane_step == step.step and model in models:
            answers[model] = result
    verdicts = tuple(result for result in row.results if result.model in step.judges)
    return ItemView(row.first.id, answers, verdicts)


class CompareScreen(Screen[None]):
    """A run's models side by side; ``live`` says whether the run is still going."""

    CSS_PATH = "compare.tcss"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "compare--differs",
        "compare--failed",
        "compare--muted",
    }
    AUTO_FOCUS = "#compare-items"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "disagreements", "Disagreements", id="compare.disagreements"),
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
    ]

    def __init__(self, run: Run, *, live: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.run = run
        self.live = live
        self.comparison: Comparison | None = None
        self.step: StepScores | None = None
        self.items: list[ItemView] = []
        self.only_disagreements = False
        self.labels: dict[str, str] = {}
        """Each model as the tables name it (``labels_of``)."""

    def compose(self) -> ComposeResult:
        yield Static("Reading the run…", id="compare-title", markup=False)
        yield DataTable(cursor_type="none", cell_padding=0, id="scoreboard")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="compare-items")
        with VerticalScroll(id="compare-pane"):
            yield Static(id="compare-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#scoreboard").border_title = "Scoreboard"
        self.query_one("#compare-items").border_title = "Items"
        self._refold()
        self.set_interval(REFOLD_EVERY_S, self._refold_if_live)

    def _refold_if_live(self) -> None:
        if not (self.live() or self._last_live):
            return
        if time.monotonic() - self._folded_at < FOLD_SHARE_BOUND * self._fold_s:
            return  # a big log: fold less often rather than keep a core busy
        self._refold()

    _last_live = True
    """Whether the run was going at the last fold: one more fold after it ends."""
    _folded_at = 0.0
    _fold_s = 0.0
    """When the last fold ended, and how long it took."""

    @work(group="compare", exclusive=True, exit_on_error=False)
    async def _refold(self) -> None:
        self._last_live = self.live()
        started = time.monotonic()
        comparison = await asyncio.to_thread(fold, self.run)
        self._folded_at = time.monotonic()
        self._fold_s = self._folded_at - started
        self.comparison = comparison
        self.step = comparison.scores[0] if comparison.scores else None
        self._show()

    def action_disagreements(self) -> None:
        self.only_disagreements = not self.only_disagreements
        self._show()

    # -- drawing -------------------------------------------------------------------

    def _show(self) -> None:
        comparison, step = self.comparison, self.step
        title = self.query_one("#compare-title", Static)
        if comparison is None:
            return
        if step is None:
            title.update(
                f"Run {self.run.run_id}: nothing to compare: every step has one model and no judge."
            )
            return
        views = [item_view(row, step) for row in comparison.rows]
        views = [view for view in views if view.answers]
        disagreeing = sum(view.disagrees for view in views)
        self.items = [v for v in views if v.disagrees] if self.only_disagreements else views
        self.labels = labels_of([score.model for score in step.models])
        where = f"step {step.step} · " if step.step else ""
        judges = [split_lane(judge)[1] for judge in step.judges]
        judged = f"judged by {', '.join(judges)}" if judges else "no judge"
        shown = "disagreements only" if self.only_disagreements else "all items"
        title.update(
            f"{self.run.run_id} · {where}{step.items:,} items · {judged} · "
            f"{disagreeing:,} disagree · {shown}" + (" · live" if self._last_live else "")
        )
        self._show_scores(step)
        self._show_items(step)
        self._show_detail()

    def _show_scores(self, step: StepScores) -> None:
        table = self.query_one("#scoreboard", DataTable)
        table.clear(columns=True)
        rows = [score_cells(self.labels[score.model], score) for score in step.models]
        columns = zip(SCORE_COLUMNS, *rows, strict=True)
        widths = [max(len(text) for text in column) for column in columns]
        room = self._room() - sum(widths[1:]) - len(widths)
        widths[0] = max(len("model"), min(widths[0], room))
        for label, width in zip(SCORE_COLUMNS, widths, strict=True):
            table.add_column(label, width=width + 1)  # no cell padding: one cell apart
        for score, cells in zip(step.models, rows, strict=True):
            table.add_row(*cells, key=score.model)

    def _show_items(self, step: StepScores) -> None:
        table = self.query_one("#compare-items", DataTable)
        kept = self._highlighted_id()
        table.clear(columns=True)
        id_width = max((len(view.id) for view in self.items), default=2)
        table.add_column("id", key="id", width=max(2, id_width))
        best_width = max((len(label) for label in self.labels.values()), default=4)
        judge_cells = (best_width + len("medium") + 4) if step.judges else 0
        room = self._room() - id_width - 2 - judge_cells - 2 * len(step.models)
        answer_width = max(8, min(ANSWER_WIDTH, room // max(1, len(step.models))))
        for score in step.models:
            table.add_column(self.labels[score.model], key=score.model, width=answer_width)
        if step.judges:
            table.add_column("best", width=best_width)
            table.add_column("conf", width=len("medium"))
        styles = self._styles()
        for view in self.items:
            cells: list[str | Text] = [view.id]
            for score in step.models:
                answer = view.answers.get(score.model)
                cells.append(_answer_cell(answer, view.disagrees, styles, answer_width))
            if step.judges:
                verdict = view.verdict
                best = str(verdict.get("best", "-"))
                confidence = str(verdict.get("confidence", "-"))
                cells += [self.labels.get(best, best), confidence]
            table.add_row(*cells, key=view.id)
        if kept is not None:
            try:
                table.move_cursor(row=table.get_row_index(kept), animate=False)
            except RowDoesNotExist:
                pass

    def _room(self) -> int:
        """The cells a table's columns share: the screen less the border and a scrollbar."""
        return max(40, self.size.width - 4)

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#compare-items", DataTable)
        if not table.row_count or not table.is_valid_row_index(table.cursor_row):
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#compare-items")
    def _show_detail(self) -> None:
        detail = self.query_one("#compare-detail", Static)
        key = self._highlighted_id()
        view = next((v for v in self.items if v.id == key), None)
        if view is None:
            detail.update(Text(""))
        else:
            detail.update(detail_text(view, self.labels, self._styles()))

    def _styles(self) -> Styles:
        return Styles(
            *(self.get_component_rich_style(f"compare--{name}", partial=True)
              for name in ("differs", "failed", "muted"))
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Styles:
    """The theme's styles for what differs, what failed and what is not in yet."""

    differs: Style
    failed: Style
    muted: Style


def labels_of(models: list[str]) -> dict[str, str]:
    """Models without their provider when that leaves them apart (``gpt-4o-mini``), so two
    answers fit side by side at 80 columns; else as given."""
    short = {model: model.partition(":")[2] or model for model in models}
    return short if len(set(short.values())) == len(short) else {m: m for m in models}


def score_cells(label: str, score: ModelScore) -> tuple[str, ...]:
    return (
        label,
        f"{score.answered:,}/{score.results:,}",
        _or_dash(score.wins, lambda wins: f"{wins:,.0f}"),
        _or_dash(score.win_rate, lambda share: f"{share:.1%}"),
        _or_dash(score.agreement, lambda share: f"{share:.1%}"),
        _or_dash(score.mean_cost_usd, _format.money),
        _or_dash(score.mean_latency_ms, _format.latency),
        _or_dash(score.cost_per_win_usd, _format.money),
    )


def _or_dash(value: float | None, show: Callable[[float], str]) -> str:
    return "-" if value is None else show(value)


def _answer_cell(result: ItemResult | None, disagrees: bool, styles: Styles, width: int) -> Text:
    if result is None:
        return Text("…", style=styles.muted)
    if result.status != "ok":
        kind = result.error.kind if result.error is not None else result.status
        return Text(kind, style=styles.failed)
    answer = one_line(result)
    cut = answer if len(answer) <= width else answer[: width - 1] + "…"
    return Text(cut, style=styles.differs if disagrees else "")


def one_line(result: ItemResult) -> str:
    """An answer in a cell: a parsed answer's values (the fields' names are the same in every
    row), else its text on one line."""
    if isinstance(result.parsed, dict):
        return " · ".join(str(value) for value in result.parsed.values())
    return " ".join((result.output or "").split())


def detail_text(view: ItemView, labels: dict[str, str], styles: Styles) -> Text:
    """The fields the answers differ on marked, the judge's word, then the answers whole."""
    text = Text()
    text.append(view.id, style="bold")
    text.append("  the models disagree\n" if view.disagrees else "  the models agree\n")
    parsed = {m: r.parsed for m, r in view.answers.items() if isinstance(r.parsed, dict)}
    if len(parsed) > 1:
        names = dict.fromkeys(name for fields in parsed.values() for name in fields)
        for name in names:
            values = {model: fields.get(name) for model, fields in parsed.items()}
            differs = len({repr(v) for v in values.values()}) > 1
            mark = f"{'≠' if differs else '='} {name}: "
            text.append(mark, style=styles.differs if differs else "")
            text.append(
                " | ".join(f"{labels.get(m, m)}: {value}" for m, value in values.items()) + "\n"
            )
    for judge in view.verdicts:
        text.append(f"\njudge {split_lane(judge.model)[1]}", style="bold")
        if judge.status != "ok" or not isinstance(judge.parsed, dict):
            kind = judge.error.kind if judge.error is not None else judge.status
            text.append(f"  no verdict ({kind})\n", style=styles.failed)
            continue
        verdict = judge.parsed
        best = str(verdict.get("best", "-"))
        text.append(
            f"  best {labels.get(best, best)} · confidence {verdict.get('confidence', '-')}\n"
        )
        text.append(f"verdict: {verdict.get('verdict', '')}\n")
        text.append(f"reasoning: {verdict.get('reasoning', '')}\n", style="italic")
    for model, result in view.answers.items():
        text.append(f"\n{labels.get(model, model)}", style="bold")
        text.append(f"  {result.status} · {_format.money(result.cost_usd)} · "
                    f"{_format.latency(result.latency_ms)}\n")  # fmt: skip
        if result.status == "ok":
            text.append((result.output or "").strip() + "\n")
        elif result.error is not None:
            text.append(f"{result.error.kind}: {result.error.message}\n", style=styles.failed)
    return text
