"""Throughput and spending rate over the last minutes, as two sparklines.

One point per second from the model's ring buffers; the figure beside each
label is the recent mean (the same window the ETA uses), not the last second,
which jumps with every batch of answers.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from tui import _format
from tui.widgets._panel import ModelPanel


class ThroughputPanel(ModelPanel):
    DEFAULT_CSS = """
    ThroughputPanel {
        height: auto;
        layout: vertical;
        & > Static { color: $text-muted; }
        & > Sparkline { height: 1; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="items-label")
        yield Sparkline([], id="items-rate")
        yield Static(id="cost-label")
        yield Sparkline([], id="cost-rate")

    def on_mount(self) -> None:
        self.model_changed()

    def model_changed(self) -> None:
        model = self.model
        rate = model.items_per_s
        cost = model.cost_per_min
        self.query_one("#items-label", Static).update(
            f"items/s {'-' if rate is None else _format.count(rate)}"
        )
        self.query_one("#cost-label", Static).update(
            f"cost/min {'-' if cost is None else _format.money(cost)}"
        )
        self.query_one("#items-rate", Sparkline).data = model.throughput.points
        self.query_one("#cost-rate", Sparkline).data = model.cost_rate.points
