"""Where the run stands: counts with percentages, elapsed time, ETA and workers.

Percentages are of the run's total (item, model) pairs once the reader has
counted them; before that the counts stand alone. "done" includes the pairs a
resumed run found already finished in its log. The grid is padded by hand
rather than with a Rich table, which measures every cell on every repaint and
cost more than the rest of the tick.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text

from tui import _format
from tui.model import RowStatus
from tui.widgets._panel import ModelPanel


class StatsPanel(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stats-panel--label",
        "stats-panel--ok",
        "stats-panel--failed",
        "stats-panel--skipped",
        "stats-panel--running",
        "stats-panel--retrying",
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
    }
    """

    def render(self) -> RenderableType:
        model = self.model
        total = model.total
        counts = model.counts
        remaining = model.remaining
        label = self.component_style("stats-panel--label")

        def style(name: RowStatus) -> Style:
            return self.component_style(f"stats-panel--{name}")

        left: list[tuple[str, Style, str, str]] = [
            (name, style(name), f"{counts[name]:,}", _format.percent(counts[name], total))
            for name in ("ok", "failed", "skipped")
        ]
        right: list[tuple[str, Style, str]] = [
            ("running", style("running"), f"{counts['running']:,}"),
            ("retrying", style("retrying"), f"{counts['retrying']:,}"),
            ("remaining", label, "-" if remaining is None else f"{remaining:,}"),
        ]
        name_w = max(len(row[0]) for row in left)
        count_w = max(len(row[2]) for row in left)
        pct_w = max(len(row[3]) for row in left)
        right_name_w = max(len(row[0]) for row in right)
        right_count_w = max(len(row[2]) for row in right)
        text = Text()
        for (name, name_style, count, pct), (r_name, r_style, r_count) in zip(
            left, right, strict=True
        ):
            text.append(name.ljust(name_w), name_style)
            text.append(f" {count.rjust(count_w)} ")
            text.append(pct.rjust(pct_w), label)
            text.append("  ")
            text.append(r_name.ljust(right_name_w), r_style)
            text.append(f" {r_count.rjust(right_count_w)}\n")
        text.append("done ", label)
        text.append(f"{model.done:,}")
        text.append(" of ", label)
        text.append("?" if total is None else f"{total:,}")
        if total:
            text.append(f" ({_format.percent(model.done, total)})", label)
        if model.already_done:
            text.append(f"  {model.already_done:,} before resume", label)
        eta = model.eta_s
        text.append("\nelapsed ", label)
        text.append(_format.duration(model.elapsed_s))
        text.append("  eta ", label)
        text.append("-" if eta is None else _format.duration(eta))
        text.append("  workers ", label)
        text.append("-" if model.workers is None else str(model.workers))
        return text
