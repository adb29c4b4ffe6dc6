"""Throughput and spending rate over the last minutes, as two sparklines.

One point per second from the model's ring buffers, the newest on the right;
the figure above each sparkline is the recent mean (the same window the ETA
uses), not the last second, which jumps with every batch of answers.

The bars are drawn here, scaled from zero to the highest point shown, rather
than by Textual's ``Sparkline``, which scales from the lowest point to the
highest: a run going steadily at 100 items/s drew flat at the bottom, one
second of data drew full, and a rate of zero drew a row of bars. Here zero is
an empty cell and a steady rate is a level line. The whole panel is drawn by
``render()``, which costs less than updating child widgets on every tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from rich.console import RenderableType
from rich.text import Text

from tui import _format
from tui.widgets._panel import ModelPanel

BARS: Final = " ▁▂▃▄▅▆▇█"
"""Index 0 is zero (an empty cell); a point above zero gets at least the lowest bar."""


def spark(points: Sequence[float], width: int) -> str:
    """The last ``width`` points as bars from zero to their maximum, right-aligned."""
    shown = list(points)[-width:] if width > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return " " * max(0, width)
    steps = len(BARS) - 1
    cells = [BARS[0] if p <= 0 else BARS[max(1, round(p / top * steps))] for p in shown]
    return "".join(cells).rjust(width)


class ThroughputPanel(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "throughput--label",
        "throughput--items",
        "throughput--cost",
    }

    DEFAULT_CSS = """
    ThroughputPanel {
        height: auto;
        & > .throughput--label { color: $text-muted; }
        & > .throughput--items { color: $primary; }
        & > .throughput--cost { color: $warning; }
    }
    """

    def render(self) -> RenderableType:
        model = self.model
        width = self.content_size.width
        label = self.component_style("throughput--label")
        rate, cost = model.items_per_s, model.cost_per_min
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("items/s ", label)
        text.append("-" if rate is None else _format.count(rate))
        text.append("\n")
        text.append(
            spark(model.throughput.points, width), self.component_style("throughput--items")
        )
        text.append("\ncost/min ", label)
        text.append("-" if cost is None else _format.money(cost))
        text.append("\n")
        text.append(spark(model.cost_rate.points, width), self.component_style("throughput--cost"))
        return text
