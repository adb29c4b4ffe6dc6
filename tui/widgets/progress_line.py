"""The run's progress on one line: a bar, done of total, elapsed, ETA and workers.

What it counts is what the engine counts: (item, model) pairs, one call each. With
several models or steps an item is several calls, and the line says ``calls``.

One full-width line rather than lines in a narrow panel, so the figures that
matter most never wrap out of sight: the figures are laid out first and the
bar takes what is left. When even the figures are too wide (a million items
at 80 columns) they say the same in fewer cells (``12.3k`` for ``12,345``,
shorter labels) rather than lose a line. The bar is drawn in eighths of a
cell, so it moves with every 0.1% of a large run.
"""

from __future__ import annotations

from typing import ClassVar, Final

from rich.console import RenderableType
from rich.text import Text

from tui import _format
from tui.model import RunModel
from tui.widgets._panel import ModelPanel

MIN_BAR: Final = 10
"""The narrowest bar worth drawing; below this the figures take the whole line."""
_EIGHTHS: Final = " ▏▎▍▌▋▊▉"
_FULL: Final = "█"


def bar(fraction: float, width: int) -> str:
    """``fraction`` (0 to 1) of ``width`` cells filled, to an eighth of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = _FULL * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def figures(model: RunModel, width: int) -> list[tuple[str, str]]:
    """(label, value) pairs of the progress, in as few cells as ``width`` needs."""
    total, done, eta = model.total, model.done, model.eta_s
    workers = "-" if model.workers is None else str(model.workers)
    unit = " calls" if len(model.models) > 1 else ""  # several models or steps an item
    for compact in (False, True):
        number = _format.count if compact else (lambda n: f"{n:,}")
        done_text = f"{number(done)} of {'?' if total is None else number(total)}{unit}"
        parts = [
            ("", done_text),
            ("", _format.percent(done, total) if total else ""),
            ("elapsed " if not compact else "", _format.duration(model.elapsed_s)),
            ("eta ", "-" if eta is None else _format.duration(eta)),
            ("workers " if not compact else "w ", workers),
        ]
        parts = [(label, value) for label, value in parts if value]
        if _length(parts) + 1 + MIN_BAR <= width:
            break
    return parts


def _length(parts: list[tuple[str, str]]) -> int:
    return sum(len(label) + len(value) for label, value in parts) + 2 * (len(parts) - 1)


class ProgressLine(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "progress-line--label",
        "progress-line--done",
        "progress-line--todo",
    }

    DEFAULT_CSS = """
    ProgressLine {
        height: 1;
        padding: 0 1;
        & > .progress-line--label { color: $text-muted; }
        & > .progress-line--done { color: $success; }
        & > .progress-line--todo { color: $panel-lighten-2; }
    }
    """

    def render(self) -> RenderableType:
        model = self.model
        width = self.content_size.width
        label = self.component_style("progress-line--label")
        parts = figures(model, width)
        text = Text(no_wrap=True, overflow="ellipsis")
        room = width - _length(parts) - 1
        if room >= MIN_BAR:
            fraction = model.done / model.total if model.total else 0.0
            filled = bar(fraction, room)
            cut = len(filled.rstrip(" "))
            text.append(filled[:cut], self.component_style("progress-line--done"))
            text.append("░" * (room - cut), self.component_style("progress-line--todo"))
            text.append(" ")
        for index, (name, value) in enumerate(parts):
            if index:
                text.append("  ")
            text.append(name, label)
            text.append(value)
        return text
