"""The Compare screen: which of a run's models to use, on this data, at what price.

At the top the per-model scoreboard of one compared step (a step with several models,
or one a judge reads): items answered, judge wins and win rate, agreement with the
other models, mean cost and latency, cost per win; the figures are the engine's
``Scoreboard``, the same ``batchdeck compare RUN`` prints. Below, one row per item with
each model's answer side by side; the highlighted item's answers, their differing
fields and the judge's verdict, confidence and reasoning fill the pane under it. ``s``
goes to the next compared step, and from a judged step's answers to the judge's view
of it (each item's preferred model, confidence and verdict). ``d`` keeps only the
items the models disagree on.

It folds the engine's events, as every screen does (``ComparisonModel``): the run
screen's, which it feeds whether this screen is open or not, for the run on screen; a
replay of the log, drained here, for a past run. Every ``REFRESH_EVERY_S`` the items
that changed since the last look are counted again and only their rows are redrawn,
so a refresh costs what arrived, not the size of the run. Rows join at the end as their
items arrive; a full redraw (switching steps or the filter, the run's end) puts them
in input order.
"""

from __future__ import annotations

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

from engine import ItemResult, ItemRow, ModelScore, Run, StepScores, split_lane
from tui import _format
from tui.model import ComparisonModel, EventBuffer
from tui.widgets._row_keys import highlighted_key, move_to_key

REFRESH_EVERY_S: Final = 0.5
ANSWER_WIDTH: Final = 40
"""An answer's column in the item table at most this wide; the pane below shows it whole."""
SCORE_COLUMNS: Final = ("model", "answered", "wins", "win %", "agree", "mean $", "latency",
                        "$/win")  # fmt: skip


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
    """A run's models side by side: ``comparison`` is the run screen's, for the run it shows
    (None: a past run, replayed here)."""

    CSS_PATH = "compare.tcss"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "compare--differs",
        "compare--failed",
        "compare--muted",
    }
    AUTO_FOCUS = "#compare-items"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "disagreements", "Disagreements", id="compare.disagreements"),
        Binding("s", "next_step", "Next step", id="compare.next_step"),
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
    ]

    def __init__(self, run: Run, comparison: ComparisonModel | None = None) -> None:
        super().__init__()
        self.run = run
        self.comparison = ComparisonModel(run.config) if comparison is None else comparison
        self._replayed: EventBuffer | None = EventBuffer() if comparison is None else None
        """A past run's replayed events, drained into ``comparison`` on each refresh."""
        self.step_index = 0
        """Which of the compared steps is shown."""
        self.step: StepScores | None = None
        self.judging = False
        """Whether the judge's view of ``step`` is shown (its verdicts), not its answers."""
        self.views: dict[str, ItemView] = {}
        """The shown step's view of every item that has answers, by id."""
        self.disagreeing: set[str] = set()
        self.only_disagreements = False
        self.labels: dict[str, str] = {}
        """Each model as the tables name it (``labels_of``)."""
        self._answer_width = ANSWER_WIDTH
        self._id_width = 0
        self._finished_shown = False
        """Whether the full redraw at the run's end has been made."""

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
        if self._replayed is not None:
            self._replay(self._replayed)
        self.refresh_view()
        self.set_interval(REFRESH_EVERY_S, self.refresh_view)

    def on_resize(self) -> None:
        if self.step is not None:
            self._show_all()  # the columns share the new width

    @work(group="compare-replay", exclusive=True, exit_on_error=False)
    async def _replay(self, into: EventBuffer) -> None:
        await self.run.replay([into])

    def refresh_view(self) -> None:
        """Fold what arrived, count the items that changed, redraw what they moved."""
        comparison = self.comparison
        if self._replayed is not None:
            comparison.apply_all(self._replayed.drain())
        changed = comparison.refresh()
        scores = comparison.scores()
        if not scores:
            self.query_one("#compare-title", Static).update(
                f"Run {self.run.run_id}: nothing to compare: every step has one model and no judge."
            )
            return
        step, judging = self._views(scores)[self.step_index % len(self._views(scores))]
        ended = comparison.finished and not self._finished_shown
        if self.step is None or self.step.step != step.step or judging != self.judging or ended:
            self.judging = judging
            self._finished_shown = comparison.finished
            self.step = step
            self._show_all()
        elif changed or step != self.step:
            self.step = step
            self._show_scores(step)
            self._show_changed(step, changed)
            self._show_title()

    def action_disagreements(self) -> None:
        self.only_disagreements = not self.only_disagreements
        self._show_all()

    def action_next_step(self) -> None:
        views = self._views(self.comparison.scores())
        if len(views) < 2:
            self.notify("This run has one step to compare and no judge.")
            return
        self.step_index = (self.step_index + 1) % len(views)
        self.step = None
        self.refresh_view()

    @staticmethod
    def _views(scores: tuple[StepScores, ...]) -> list[tuple[StepScores, bool]]:
        """What ``s`` goes through: each compared step's answers, and after a judged one's,
        the judge's view of it (``True``)."""
        return [
            (step, judging) for step in scores for judging in (False, True)[: 1 + bool(step.judges)]
        ]

    # -- drawing -------------------------------------------------------------------

    def _show_all(self) -> None:
        step = self.step
        if step is None:
            return
        views = (item_view(row, step) for row in self.comparison.rows())
        self.views = {view.id: view for view in views if view.answers}
        self.disagreeing = {id for id, view in self.views.items() if view.disagrees}
        self.labels = labels_of([score.model for score in step.models])
        self._show_title()
        self._show_scores(step)
        self._show_items(step)
        self._show_detail()

    def _show_title(self) -> None:
        step = self.step
        assert step is not None
        count = len(self._views(self.comparison.scores()))
        of = f" ({self.step_index % count + 1} of {count}, s: next)" if count > 1 else ""
        name = f"step {step.step}" if step.step else "the answers"
        where = f"{'the judge on ' if self.judging else ''}{name}{of} · "
        where = where if step.step or count > 1 else ""
        judges = [split_lane(judge)[1] for judge in step.judges]
        judged = f"judged by {', '.join(judges)}" if judges else "no judge"
        shown = "disagreements only" if self.only_disagreements else "all items"
        live = "" if self.comparison.finished else " · live"
        self.query_one("#compare-title", Static).update(
            f"{self.run.run_id} · {where}{step.items:,} items · {judged} · "
            f"{len(self.disagreeing):,} disagree · {shown}{live}"
        )

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

    def _shown(self, view: ItemView) -> bool:
        return view.disagrees or not self.only_disagreements

    def _show_items(self, step: StepScores) -> None:
        table = self.query_one("#compare-items", DataTable)
        kept = self._highlighted_id()
        table.clear(columns=True)
        shown = [view for view in self.views.values() if self._shown(view)]
        id_width = self._id_width = max((len(view.id) for view in shown), default=2)
        table.add_column("id", key="id", width=max(2, id_width))
        best_width = max((len(label) for label in self.labels.values()), default=4)
        if self.judging:
            room = self._room() - id_width - best_width - len("medium") - 6
            self._answer_width = max(8, room)
            table.add_column("best", key="best", width=best_width)
            table.add_column("conf", key="conf", width=len("medium"))
            table.add_column("verdict", key="verdict", width=self._answer_width)
        else:
            judge_cells = (best_width + len("medium") + 4) if step.judges else 0
            room = self._room() - id_width - 2 - judge_cells - 2 * len(step.models)
            self._answer_width = max(8, min(ANSWER_WIDTH, room // max(1, len(step.models))))
            for score in step.models:
                label = self.labels[score.model]
                table.add_column(label, key=score.model, width=self._answer_width)
            if step.judges:
                table.add_column("best", key="best", width=best_width)
                table.add_column("conf", key="conf", width=len("medium"))
        styles = self._styles()
        for view in shown:
            table.add_row(*self._cells(view, step, styles), key=view.id)
        move_to_key(table, kept)

    def _show_changed(self, step: StepScores, changed: list[str]) -> None:
        """Redraw the rows of the items that changed; add those new to the table, drop those
        the filter no longer keeps."""
        if any(len(id) > self._id_width for id in changed):
            self._show_all()  # a longer id than the column holds: lay the table out again
            return
        table = self.query_one("#compare-items", DataTable)
        styles = self._styles()
        keys = [column.key for column in table.ordered_columns]
        highlighted = self._highlighted_id()
        for id in changed:
            view = item_view(self.comparison.row(id), step)
            if not view.answers:
                continue
            self.views[id] = view
            if view.disagrees:
                self.disagreeing.add(id)
            else:
                self.disagreeing.discard(id)
            there = id in table.rows
            if not self._shown(view):
                if there:
                    table.remove_row(id)
            elif there:
                for key, cell in zip(keys, self._cells(view, step, styles), strict=True):
                    table.update_cell(id, key, cell)
            else:
                table.add_row(*self._cells(view, step, styles), key=id)
        if highlighted in changed:
            self._show_detail()

    def _cells(self, view: ItemView, step: StepScores, styles: Styles) -> list[str | Text]:
        cells: list[str | Text] = [view.id]
        if self.judging:
            verdict = view.verdict
            best = str(verdict.get("best", "-"))
            text = " ".join(str(verdict.get("verdict", "-")).split())
            cut = text if len(text) <= self._answer_width else text[: self._answer_width - 1] + "…"
            return [*cells, self.labels.get(best, best), str(verdict.get("confidence", "-")), cut]
        for score in step.models:
            answer = view.answers.get(score.model)
            cells.append(_answer_cell(answer, view.disagrees, styles, self._answer_width))
        if step.judges:
            verdict = view.verdict
            best = str(verdict.get("best", "-"))
            cells += [self.labels.get(best, best), str(verdict.get("confidence", "-"))]
        return cells

    def _room(self) -> int:
        """The cells a table's columns share: the screen less the border and a scrollbar."""
        return max(40, self.size.width - 4)

    def _highlighted_id(self) -> str | None:
        return highlighted_key(self.query_one("#compare-items", DataTable))

    @on(DataTable.RowHighlighted, "#compare-items")
    def _show_detail(self) -> None:
        detail = self.query_one("#compare-detail", Static)
        key = self._highlighted_id()
        view = None if key is None else self.views.get(key)
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
