"""Setup's try: the first N items (or N at random) on every chosen model, answers side by side.

A try is a real run (``engine.create_try``: the same caps, rate limits and response
cache as the full run, in a run dir of its own under the tries dir, as ``batchdeck
try``'s), so what it paid for is in the cache when the full run starts with the
same prompt and models, and a try again after an edit pays only for the requests
that changed. It runs in this widget's own worker, never the app's ``engine``
group: the run screen's run is not touched.

The try's events go to an ``EventBuffer``, drained into a ``TryModel`` every
``REFRESH_EVERY_S``; the table is redrawn when something moved (a try is a few
dozen results). One row per item, one column per lane (a model, or a model of a
step), a judge's ``best`` and ``confidence`` after them; an answer the cache gave
is marked ``↺``, a failure is its error on one line. The highlighted item fills
the pane below (the Compare screen's ``detail_text``).

When the try ends, its calls' tokens calibrate the estimate of the whole input
(``engine.calibration_of``); the panel says what the full run would cost at them,
and posts ``Tried`` so Setup's own estimate says it too. ``escape`` posts
``Closed``: Setup shows the form again, to edit and try again (``ctrl+t``) or
start (``ctrl+s``), both Setup's keys.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Input, Static

from engine import (
    BatchdeckError,
    Calibration,
    Estimate,
    ItemResult,
    ItemRow,
    Run,
    RunConfig,
    calibration_of,
    create_try,
    estimate,
    split_lane,
)
from tui import _format
from tui.model import EventBuffer, TryModel
from tui.screens.compare import ItemView, Styles, detail_text, labels_of, one_line
from tui.widgets._row_keys import highlighted_key, move_to_key

DEFAULT_N: Final = 10
REFRESH_EVERY_S: Final = 0.2
ANSWER_WIDTH: Final = 40
CACHED_MARK: Final = "↺ "
"""Before an answer the response cache gave: paid for once, by an earlier run or try."""


class TryPanel(Vertical):
    """A try of the form's run, drawn side by side; ``begin(config)`` starts one."""

    DEFAULT_CSS = """
    TryPanel {
        height: 1fr;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    TryPanel:focus-within {
        border: round $primary;
        border-title-color: $text-primary;
    }
    TryPanel #try-bar { height: 1; }
    TryPanel #try-n-label { width: auto; margin-right: 1; color: $text-muted; }
    TryPanel #try-n { width: 7; height: 1; border: none; padding: 0 1; background: $boost; }
    TryPanel #try-n:focus { background: $primary 25%; }
    TryPanel #try-sample { height: 1; border: none; padding: 0; margin-left: 2; }
    TryPanel #try-status { height: auto; max-height: 4; color: $text-muted; }
    TryPanel #try-items { height: 2fr; min-height: 4; }
    TryPanel #try-items:focus { background: $primary 10%; }
    TryPanel #try-pane { height: 1fr; max-height: 10; }
    TryPanel > .try--differs { color: $text-warning; text-style: bold; }
    TryPanel > .try--failed { color: $text-error; }
    TryPanel > .try--muted { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"try--differs", "try--failed", "try--muted"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Edit", id="setup.try.close"),
    ]

    class Tried(Message):
        """A try ended; ``calibration`` is what its calls used (None: it measured nothing)."""

        def __init__(self, run: Run, calibration: Calibration | None) -> None:
            super().__init__()
            self.run = run
            self.calibration = calibration

    class Closed(Message):
        """The user went back to the form."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run: Run | None = None
        self.model: TryModel | None = None
        self.events = EventBuffer()
        self.running = False
        self.lanes: list[str] = []
        self.judges: list[str] = []
        self.labels: dict[str, str] = {}
        self.projection = ""
        """What the full run would cost at the tokens this try used, once it ended."""
        self._rows: dict[str, ItemRow] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="try-bar"):
            yield Static("Items to try", id="try-n-label")
            yield Input(str(DEFAULT_N), type="integer", id="try-n", compact=True)
            yield Checkbox("random sample", id="try-sample", compact=True)
        yield Static("", id="try-status", markup=False)
        yield DataTable(cursor_type="row", zebra_stripes=True, id="try-items")
        with VerticalScroll(id="try-pane", can_focus=False):
            yield Static(id="try-detail", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Try (ctrl+t again · esc edit · ctrl+s start the full run)"
        self.set_interval(REFRESH_EVERY_S, self._refresh)

    # -- trying --------------------------------------------------------------------

    def items_to_try(self) -> tuple[int, bool] | None:
        """N and whether to draw at random, or None once the user is told N is wrong."""
        text = self.query_one("#try-n", Input).value.strip()
        if not text.isdigit() or int(text) < 1:
            self.query_one("#try-status", Static).update(
                f"Items to try: a whole number from 1, please (not {text!r})"
            )
            return None
        return int(text), self.query_one("#try-sample", Checkbox).value

    def begin(self, config: RunConfig) -> None:
        """Try ``config`` now (a try still going is aborted: its answers so far are kept)."""
        chosen = self.items_to_try()
        if chosen is None:
            return
        if self.run is not None and self.running:
            self.run.abort()
        self._try(config, *chosen)

    @work(group="try", exclusive=True, exit_on_error=False)
    async def _try(self, config: RunConfig, n: int, sample: bool) -> None:
        status = self.query_one("#try-status", Static)
        status.update(f"Trying {n:,} items{' drawn at random' if sample else ''}…")
        self.projection = ""
        try:
            run = await asyncio.to_thread(create_try, config, n, sample=sample)
        except (BatchdeckError, OSError) as exc:
            status.update(f"Cannot try: {exc}")
            return
        self.run, self.running = run, True
        self.model, self.events = TryModel(run.config), EventBuffer()
        self.show()
        try:
            finished = await run.execute([self.events])
        except BatchdeckError as exc:
            status.update(f"The try failed: {exc}")
            return
        finally:
            if self.run is run:  # a try again's worker may have begun its own meanwhile
                self.running = False
        calibration, found = await asyncio.to_thread(_calibrated, run, config)
        self.projection = projection(found, finished.state) + (
            " (its batch models were tried online)" if config.batch_models else ""
        )
        self._refresh()
        self.show()
        self.post_message(self.Tried(run, calibration if calibration.items else None))

    def _refresh(self) -> None:
        if self.model is not None and self.model.apply_all(self.events.drain()):
            self.show()

    def action_close(self) -> None:
        self.post_message(self.Closed())

    # -- drawing -------------------------------------------------------------------

    def show(self) -> None:
        """Draw the model as it is."""
        rows = self.model.rows() if self.model is not None else []
        self._rows = {row.first.id: row for row in rows}
        self.lanes, self.judges = self.model.lanes() if self.model is not None else ([], [])
        self.labels = lane_labels(self.lanes)
        # by lane, and by model too: what a judge's ``best`` names
        self.labels |= {split_lane(lane)[1]: label for lane, label in self.labels.items()}
        self.query_one("#try-status", Static).update(self.status_text(rows))
        self._show_items(rows)
        self._show_detail()

    def status_text(self, rows: list[ItemRow]) -> str:
        results = [r for row in rows for r in row.results]
        going = "trying… " if self.running else ""
        if not results:
            return f"{going}no answer yet" if self.running else ""
        cached = sum(r.cached for r in results)
        failed = sum(r.status != "ok" for r in results)
        spent = sum(r.cost_usd for r in results)
        head = (
            f"{going}{len(rows):,} items · {len(results):,} answers · {_format.money(spent)}"
            + (f" · {cached:,} ↺ from the cache" if cached else "")
            + (f" · {failed:,} failed" if failed else "")
        )
        lanes = " · ".join(
            f"{self.labels.get(lane, lane)} {_format.money(sum(r.cost_usd for r in mine))} "
            f"{_format.latency(sum(r.latency_ms for r in mine) / len(mine))}"
            for lane in self.lanes
            if (mine := [r for r in results if r.model == lane])
        )
        return "\n".join(line for line in (head, lanes, self.projection) if line)

    def _show_items(self, rows: list[ItemRow]) -> None:
        table = self.query_one("#try-items", DataTable)
        kept = self._highlighted_id()
        table.clear(columns=True)
        if not rows:
            return
        id_width = max(2, *(len(row.first.id) for row in rows))
        judge_width = (len("medium") + max(map(len, self.labels.values()), default=4) + 2) * len(
            self.judges
        )
        room = max(40, self.size.width - 4) - id_width - judge_width - 2 * len(self.lanes)
        width = max(8, min(ANSWER_WIDTH, room // max(1, len(self.lanes))))
        table.add_column("id", key="id", width=id_width)
        for lane in self.lanes:
            table.add_column(self.labels[lane], key=lane, width=width)
        for judge in self.judges:
            table.add_column("best", key=f"{judge}#best")
            table.add_column("conf", key=f"{judge}#conf")
        styles = self._styles()
        for row in rows:
            by_lane = {r.model: r for r in row.results}
            answers = [by_lane.get(lane) for lane in self.lanes]
            said = {one_line(r) for r in answers if r is not None and r.status == "ok"}
            cells: list[str | Text] = [row.first.id]
            cells += [answer_cell(r, len(said) > 1, styles, width) for r in answers]
            for judge in self.judges:
                verdict = by_lane.get(judge)
                parsed = verdict.parsed if verdict is not None else None
                fields = parsed if isinstance(parsed, dict) else {}
                best = str(fields.get("best", "-"))
                cells += [self.labels.get(best, best), str(fields.get("confidence", "-"))]
            table.add_row(*cells, key=row.first.id)
        move_to_key(table, kept)

    def _highlighted_id(self) -> str | None:
        return highlighted_key(self.query_one("#try-items", DataTable))

    @on(DataTable.RowHighlighted, "#try-items")
    def _show_detail(self) -> None:
        detail = self.query_one("#try-detail", Static)
        row = self._rows.get(self._highlighted_id() or "")
        if row is None:
            detail.update("")
            return
        by_lane = {r.model: r for r in row.results}
        view = ItemView(
            row.first.id,
            {lane: by_lane[lane] for lane in self.lanes if lane in by_lane},
            tuple(by_lane[j] for j in self.judges if j in by_lane),
        )
        detail.update(detail_text(view, self.labels, self._styles()))

    def _styles(self) -> Styles:
        return Styles(
            *(self.get_component_rich_style(f"try--{name}", partial=True)
              for name in ("differs", "failed", "muted"))
        )  # fmt: skip


def _calibrated(run: Run, config: RunConfig) -> tuple[Calibration, Estimate]:
    """The try's calibration, and the estimate of the whole input it gives (in a thread)."""
    calibration = calibration_of(run)
    return calibration, estimate(config, calibration=calibration)


def projection(found: Estimate, state: str) -> str:
    """What the full run would cost, at the tokens the try used."""
    cost = "cost unknown" if found.cost_likely is None else f"~{_format.money(found.cost_likely)}"
    how = (
        f"calibrated from {found.calibrated_items:,} sampled items"
        if found.calibrated_items
        else "not calibrated: no call measured"
    )
    cached = f", {found.cached:,} calls cached" if found.cached else ""
    ended = "" if state == "finished" else f" (the try ended {state})"
    return f"Full run: {found.items:,} items {cost}, {how}{cached}{ended}"


def lane_labels(lanes: list[str]) -> dict[str, str]:
    """Each lane as a column is named: its model, short when that leaves them apart; with
    its step when several steps answer."""
    steps = {split_lane(lane)[0] for lane in lanes}
    models = labels_of(list(dict.fromkeys(split_lane(lane)[1] for lane in lanes)))
    return {
        lane: (f"{step} {models[model]}" if len(steps) > 1 else models[model])
        for lane in lanes
        for step, model in [split_lane(lane)]
    }


def answer_cell(result: ItemResult | None, differs: bool, styles: Styles, width: int) -> Text:
    """An answer on one line: ``↺`` when the cache gave it, a failure as its error."""
    if result is None:
        return Text("…", style=styles.muted)
    if result.status != "ok":
        kind = result.error.kind if result.error is not None else result.status
        message = result.error.message if result.error is not None else ""
        return Text(_cut(" ".join(f"{kind}: {message}".split()), width), style=styles.failed)
    answer = (CACHED_MARK if result.cached else "") + one_line(result)
    return Text(_cut(answer, width), style=styles.differs if differs else "")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
