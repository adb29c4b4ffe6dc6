"""Money at a glance: spent, held by calls in flight, and the cap, as a bar and figures.

The engine reserves a call's worst-case cost before sending it, so "reserved"
is what could still land on the bill; spent + reserved never exceeds the cap.
The bar shows both, spent solid and reserved shaded, so a user sees how close
the run is to its cap before the next batch of answers arrives.
"""

from __future__ import annotations

from typing import ClassVar, Final

from rich.console import RenderableType
from rich.text import Text

from tui import _format
from tui.widgets._panel import ModelPanel

_SPENT_CELL: Final = "█"
_RESERVED_CELL: Final = "▒"
_FREE_CELL: Final = "░"


class CostMeter(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "cost-meter--label",
        "cost-meter--spent",
        "cost-meter--reserved",
        "cost-meter--free",
    }

    DEFAULT_CSS = """
    CostMeter {
        height: auto;
        & > .cost-meter--label { color: $text-muted; }
        & > .cost-meter--spent { color: $primary; }
        & > .cost-meter--reserved { color: $warning; }
        & > .cost-meter--free { color: $panel-lighten-2; }
    }
    """

    _figures: tuple[float, float, float | None, int] | None = None

    def model_changed(self) -> None:
        model = self.model
        figures = (model.spent_usd, model.reserved_usd, model.cap_usd, len(model.unpriced))
        if figures != self._figures:
            self._figures = figures
            self.refresh()

    def render(self) -> RenderableType:
        model = self.model
        label = self.component_style("cost-meter--label")
        cap = model.cap_usd
        spent = _format.money(model.spent_usd)
        if model.unpriced:  # a model with no price: its share is unknown, not $0
            spent = "unknown" if not model.spent_usd else f"{spent} + unknown"
        text = Text.assemble(
            ("spent ", label),
            spent,
            (" of ", label),
            _format.money(cap) if cap is not None else "no cap",
            ("\nheld by calls in flight ", label),
            _format.money(model.reserved_usd),
            "\n",
        )
        if cap:
            text.append_text(self._bar(model.spent_usd, model.reserved_usd, cap))
            text.append(
                f"\n{_format.percent(model.spent_usd, cap)} spent, "
                f"{_format.percent(model.reserved_usd, cap)} held",
                label,
            )
        return text

    def _bar(self, spent: float, reserved: float, cap: float) -> Text:
        width = self.size.width
        spent_cells = min(width, round(spent / cap * width))
        held_cells = min(width - spent_cells, round((spent + reserved) / cap * width) - spent_cells)
        return Text.assemble(
            (_SPENT_CELL * spent_cells, self.component_style("cost-meter--spent")),
            (_RESERVED_CELL * held_cells, self.component_style("cost-meter--reserved")),
            (
                _FREE_CELL * (width - spent_cells - held_cells),
                self.component_style("cost-meter--free"),
            ),
        )
