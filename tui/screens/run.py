"""The live run: item table, cost meter, progress, rates, per-model and rate-limit tables.

The screen owns the one timer that moves the UI (DESIGN.md: apply engine events
from one ``set_interval`` at 10-20 Hz, never once per event). Each tick drains
the ``EventBuffer`` the engine has been appending to, folds the batch into the
``RunModel``, and lets each widget repaint if what it shows moved. Notices the
model collected (a cap reached, a torn log, a failed run) become notifications,
so engine trouble reaches the user as a sentence, never a traceback.
"""

from __future__ import annotations

from typing import Final

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from tui.model import EventBuffer, RunModel
from tui.widgets._panel import ModelSync
from tui.widgets.cost_meter import CostMeter
from tui.widgets.item_table import ItemTable
from tui.widgets.model_breakdown import ModelBreakdown
from tui.widgets.rate_limits import RateLimits
from tui.widgets.run_status import RunStatus
from tui.widgets.stats_panel import StatsPanel
from tui.widgets.throughput import ThroughputPanel

REFRESH_HZ: Final = 15.0


class RunScreen(Screen[None]):
    """Shows a ``RunModel`` fed from an ``EventBuffer`` the engine publishes into."""

    def __init__(
        self,
        model: RunModel,
        events: EventBuffer,
        *,
        refresh_hz: float = REFRESH_HZ,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.model = model
        self.events = events
        self._refresh_hz = refresh_hz
        self._synced: list[ModelSync] = []

    def compose(self) -> ComposeResult:
        model = self.model
        yield RunStatus(model, id="run-status")
        with Horizontal(id="summary"):
            yield CostMeter(model, id="cost")
            yield StatsPanel(model, id="stats")
            yield ThroughputPanel(model, id="throughput")
        yield ItemTable(model.store, id="items")
        with Vertical(id="details"):
            yield ModelBreakdown(model, id="models")
            yield RateLimits(model, id="rate-limits")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "#cost": "Cost",
            "#stats": "Progress",
            "#throughput": "Rates",
            "#models": "Models",
            "#rate-limits": "Rate limits",
        }
        for selector, title in titles.items():
            self.query_one(selector).border_title = title
        self._synced = [widget for widget in self.query("*") if isinstance(widget, ModelSync)]
        self._table = self.query_one(ItemTable)
        self._table.focus()
        self.pump()
        self.set_interval(1 / self._refresh_hz, self.pump)

    def pump(self) -> None:
        """Fold what the engine published since the last tick and repaint what moved."""
        self.model.apply_all(self.events.drain())
        for widget in self._synced:
            widget.sync()
        self._table.refresh_rows()
        for notice in self.model.drain_notices():
            self.notify(notice.message, severity=notice.severity)
