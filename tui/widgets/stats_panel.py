"""Where the run's pairs stand: ok, failed, skipped, in flight, retrying, and in a run with
provider batch jobs, submitted (in a job, waiting for its results).

Percentages are of the run's total (item, model) pairs once the reader has
counted them; before that the counts stand alone. "in flight" is the engine's
count of calls sent and not answered (``RunModel.running``), so it never reads
more than the workers. Done of total, elapsed, ETA and workers are the
``ProgressLine``'s (its "of" says what remains). A count never wraps out of
sight: one line each, and when the panel is too narrow for ``12,345`` the
counts say ``12.3k``, and then drop their percentages. The grid is padded by
hand rather than with a Rich table, which measures every cell on every repaint
and cost more than the rest of the tick.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text

from tui import _format
from tui.widgets._panel import ModelPanel


class StatsPanel(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stats-panel--label",
        "stats-panel--ok",
        "stats-panel--failed",
        "stats-panel--skipped",
        "stats-panel--running",
        "stats-panel--retrying",
        "stats-panel--submitted",
    }

    DEFAULT_CSS = """
    StatsPanel {
        height: auto;
        & > .stats-panel--label { color: $text-muted; }
        & > .stats-panel--ok { color: $text-success; }
        & > .stats-panel--failed { color: $text-error; }
        & > .stats-panel--skipped { color: $text-muted; }
        & > .stats-panel--running { color: $text-primary; }
        & > .stats-panel--retrying { color: $text-warning; }
        & > .stats-panel--submitted { color: $text-accent; }
    }
    """

    def rows(self) -> list[tuple[str, str, int, bool]]:
        """(name, component class, count, has a percentage) per line, in order."""
        model = self.model
        counts = model.counts
        return [
            ("ok", "ok", counts["ok"], True),
            ("failed", "failed", counts["failed"], True),
            ("skipped", "skipped", counts["skipped"], True),
            ("in flight", "running", model.running, False),
            ("retrying", "retrying", counts["retrying"], False),
            *([("submitted", "submitted", counts["submitted"], True)] if model.batch_jobs else []),
        ]

    def render(self) -> RenderableType:
        total = self.model.total
        rows = self.rows()
        width = self.content_size.width
        for number, with_pct in ((_grouped, True), (_format.count, True), (_format.count, False)):
            cells = [
                (
                    name,
                    style,
                    number(count),
                    _format.percent(count, total) if with_pct and has_pct else "",
                )
                for name, style, count, has_pct in rows
            ]
            name_w, count_w, pct_w = _widths(cells)
            if name_w + 1 + count_w + (pct_w and 1 + pct_w) <= width:
                break
        text = Text(no_wrap=True, overflow="ellipsis")
        for line, (name, style, count, pct) in enumerate(cells):
            if line:
                text.append("\n")
            text.append(name.ljust(name_w), self.component_style(f"stats-panel--{style}"))
            text.append(f" {count.rjust(count_w)}")
            if pct_w:
                text.append(f" {pct.rjust(pct_w)}", self.component_style("stats-panel--label"))
        return text


def _grouped(n: float) -> str:
    return f"{n:,.0f}"


def _widths(column: list[tuple[str, str, str, str]]) -> tuple[int, int, int]:
    return (
        max(len(cell[0]) for cell in column),
        max(len(cell[2]) for cell in column),
        max(len(cell[3]) for cell in column),
    )
