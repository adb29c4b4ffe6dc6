"""Where the run stands: counts with percentages, elapsed time, ETA and workers.

Percentages are of the run's total (item, model) pairs once the reader has
counted them; before that the counts stand alone. "done" includes the pairs a
resumed run found already finished in its log.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
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
        label = self.get_component_rich_style("stats-panel--label")

        def status(name: RowStatus) -> Style:
            return self.get_component_rich_style(f"stats-panel--{name}")

        grid = Table.grid(padding=(0, 1), expand=True)
        for justify in ("left", "right", "right", "left", "right"):
            grid.add_column(justify=justify)
        counts = model.counts
        remaining = model.remaining
        grid.add_row(
            Text("ok", status("ok")),
            f"{counts['ok']:,}",
            Text(_format.percent(counts["ok"], total), label),
            Text("running", status("running")),
            f"{counts['running']:,}",
        )
        grid.add_row(
            Text("failed", status("failed")),
            f"{counts['failed']:,}",
            Text(_format.percent(counts["failed"], total), label),
            Text("retrying", status("retrying")),
            f"{counts['retrying']:,}",
        )
        grid.add_row(
            Text("skipped", status("skipped")),
            f"{counts['skipped']:,}",
            Text(_format.percent(counts["skipped"], total), label),
            Text("remaining", label),
            "-" if remaining is None else f"{remaining:,}",
        )
        done = Text.assemble(
            ("done ", label),
            f"{model.done:,}",
            (" of ", label),
            "?" if total is None else f"{total:,}",
            (f" ({_format.percent(model.done, total)})", label) if total else "",
            (f"  {model.already_done:,} before resume", label) if model.already_done else "",
        )
        eta = model.eta_s
        timing = Text.assemble(
            ("elapsed ", label),
            _format.duration(model.elapsed_s),
            ("  eta ", label),
            "-" if eta is None else _format.duration(eta),
            ("  workers ", label),
            "-" if model.workers is None else str(model.workers),
        )
        outer = Table.grid(expand=True)
        outer.add_row(grid)
        outer.add_row(done)
        outer.add_row(timing)
        return outer
