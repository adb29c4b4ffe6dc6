"""Money at a glance: spent, held by calls in flight, the cap, as a bar and figures, and
what the response cache answered (its hit rate, and what it kept from being spent).

The engine reserves an item's worst-case cost before a worker gets it, so
"reserved" is what could still land on the bill; spent + reserved never
exceeds the cap. The bar shows both, spent solid and reserved shaded, so a
user sees how close the run is to its cap before the next batch of answers
arrives. "In flight" is the part held by calls sent and not answered: it is
zero while a paused run has nothing out, though the items waiting at the pause
gate still hold their reservation (the bar and "held" show that). A run with
provider batch jobs has a line for what their requests hold, at the batch price,
until their results come (hours, maybe): without a cap there is no bar to show
it. Each line says the same in fewer cells when the panel is narrow, never
wrapping.
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

    _figures: tuple[float, float, float, float, float | None, int, int, int, int] | None = None

    def model_changed(self) -> None:
        model = self.model
        figures = (
            model.spent_usd,
            model.reserved_usd,
            model.in_flight_usd,
            model.batch_usd,
            model.cap_usd,
            len(model.unpriced),
            model.cached,
            model.finished_items,
            len(model.batch_jobs),
        )
        if figures != self._figures:
            self._figures = figures
            self.refresh()

    def render(self) -> RenderableType:
        model = self.model
        width = self.content_size.width
        label = self.component_style("cost-meter--label")
        cap = model.cap_usd
        spent = _format.money(model.spent_usd)
        if model.unpriced:  # a model with no price: its share is unknown, not $0
            spent = "unknown" if not model.spent_usd else f"{spent} + unknown"
        cap_text = _format.money(cap) if cap is not None else "no cap"
        in_flight = _format.money(model.in_flight_usd)
        spent_label = _format.fitting(
            width, f"spent {spent} of {cap_text}", f"{spent} of {cap_text}"
        )
        text = Text(no_wrap=True, overflow="ellipsis")
        if spent_label.startswith("spent "):
            text.append("spent ", label)
            spent_label = spent_label.removeprefix("spent ")
        head, _, tail = spent_label.partition(" of ")
        text.append(head)
        text.append(" of ", label)
        text.append(tail)
        flight_label = _format.fitting(
            width - len(in_flight), "held by calls in flight ", "in flight ", ""
        )
        text.append(f"\n{flight_label}", label)
        text.append(in_flight)
        if model.batch_jobs:
            in_jobs = _format.money(model.batch_usd)
            jobs_label = _format.fitting(
                width - len(in_jobs), "held by batch jobs ", "in batch jobs ", "batch "
            )
            text.append(f"\n{jobs_label}", label)
            text.append(in_jobs)
        rate = model.cache_hit_rate
        if rate is not None and model.cached:  # a run the cache had nothing for shows no line
            text.append("\nresponse cache ", label)
            text.append(f"{rate:.0%} hit rate")
            text.append(f" ({model.cached:,} of {model.finished_items:,}), ", label)
            text.append(_format.money(model.saved_usd))
            text.append(" not spent", label)
        if cap:
            text.append("\n")
            text.append_text(self._bar(model.spent_usd, model.reserved_usd, cap))
            spent_pct = _format.percent(model.spent_usd, cap)
            held_pct = _format.percent(model.reserved_usd, cap)
            text.append(
                "\n"
                + _format.fitting(
                    width, f"{spent_pct} spent, {held_pct} held", f"{spent_pct} / {held_pct} held"
                ),
                label,
            )
        return text

    def _bar(self, spent: float, reserved: float, cap: float) -> Text:
        width = self.content_size.width
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
