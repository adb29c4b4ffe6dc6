"""Throughput and spending rate over the last minutes, as two sparklines.

One point per second from the model's ring buffers; the figure above each
sparkline is the recent mean (the same window the ETA uses), not the last
second, which jumps with every batch of answers. The figures are drawn by
``render()`` rather than ``Static.update()``, which would lay out the whole
screen on every tick.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.widgets import Sparkline

from tui import _format
from tui.model import RunModel
from tui.widgets._panel import ModelPanel


def _items_per_s(model: RunModel) -> str:
    rate = model.items_per_s
    return f"items/s {'-' if rate is None else _format.count(rate)}"


def _cost_per_min(model: RunModel) -> str:
    cost = model.cost_per_min
    return f"cost/min {'-' if cost is None else _format.money(cost)}"


class _Figure(ModelPanel):
    """One line of text computed from the model."""

    DEFAULT_CSS = """
    _Figure { height: 1; color: $text-muted; }
    """

    def __init__(self, model: RunModel, text: Callable[[RunModel], str]) -> None:
        super().__init__(model)
        self._text = text
        self._shown = text(model)

    def model_changed(self) -> None:
        text = self._text(self.model)
        if text != self._shown:
            self._shown = text
            self.refresh()

    def render(self) -> RenderableType:
        return self._shown


class ThroughputPanel(ModelPanel):
    DEFAULT_CSS = """
    ThroughputPanel {
        height: auto;
        layout: vertical;
        & > Sparkline { height: 1; }
    }
    """

    def compose(self) -> ComposeResult:
        yield _Figure(self.model, _items_per_s)
        yield Sparkline([], id="items-rate")
        yield _Figure(self.model, _cost_per_min)
        yield Sparkline([], id="cost-rate")

    def on_mount(self) -> None:
        self.model_changed()

    def model_changed(self) -> None:
        for figure in self.query(_Figure):
            figure.sync()
        self.query_one("#items-rate", Sparkline).data = self.model.throughput.points
        self.query_one("#cost-rate", Sparkline).data = self.model.cost_rate.points
