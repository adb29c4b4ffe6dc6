"""Bases for widgets drawn from a ``RunModel``: repaint only when the model moved.

The run screen calls ``sync()`` on each of them from its refresh timer; a
widget compares the model's ``version`` with the one it last drew and does
work only when it moved, so an idle run costs nothing per tick. They read the
model, never the engine: attributes down, and nothing here does I/O.

``ModelTable`` is for the small per-model tables. Textual's ``DataTable``
would do, but every cell update re-renders all of it through Rich, and the
per-model counts change on every tick: padded text costs a tenth as much.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.model import RunModel


class ModelSync:
    """``sync()`` calls ``model_changed()`` when ``model.version`` moved since last time."""

    model: RunModel
    _drawn_version = -1

    def sync(self) -> None:
        if self.model.version != self._drawn_version:
            self._drawn_version = self.model.version
            self.model_changed()

    def model_changed(self) -> None:
        raise NotImplementedError


class ModelPanel(ModelSync, Widget):
    """A widget whose ``render()`` reads the ``RunModel`` it was given."""

    def __init__(
        self,
        model: RunModel,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self._panel_styles: dict[str, Style] = {}

    def model_changed(self) -> None:
        self.refresh()

    def component_style(self, name: str) -> Style:
        """``get_component_rich_style(name)``, kept until the styles change.

        Textual drops its own cache of these on every ``refresh()``, and
        recomputing a component's style costs more than drawing the panel.
        """
        style = self._panel_styles.get(name)
        if style is None:
            style = self._panel_styles[name] = self.get_component_rich_style(name)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._panel_styles.clear()


class ModelTable(ModelPanel):
    """A few rows computed from the model by ``model_rows()``, drawn as padded text.

    ``COLUMNS`` is (label, right-aligned) per column. Rows are compared with
    what is on screen and repainted only when a cell's text changed.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"model-table--header"}

    DEFAULT_CSS = """
    ModelTable {
        height: auto;
        & > .model-table--header { color: $text-muted; text-style: bold; }
    }
    """

    COLUMNS: ClassVar[Sequence[tuple[str, bool]]] = ()
    DROP_FIRST: ClassVar[Sequence[int]] = ()
    """Columns (by index) left out, in this order, while the rows are wider than the
    widget: a narrow terminal loses the least useful columns, not the ends of lines."""
    _GAP: ClassVar[str] = "  "

    def __init__(
        self,
        model: RunModel,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(model, name=name, id=id, classes=classes)
        self.shown: list[tuple[str, ...]] = []
        """The rows on screen, one cell per column."""

    def model_rows(self) -> list[tuple[str, ...]]:
        """One tuple of cells per row, in display order."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.model_changed()

    def model_changed(self) -> None:
        rows = self.model_rows()
        if rows != self.shown:
            grew = len(rows) != len(self.shown)
            self.shown = rows
            self.refresh(layout=grew)

    def render(self) -> RenderableType:
        header = tuple(label for label, _ in self.COLUMNS)
        widths = [
            max(len(cell) for cell in column) for column in zip(header, *self.shown, strict=True)
        ]
        kept = list(range(len(self.COLUMNS)))
        room = self.content_size.width
        for index in self.DROP_FIRST:
            if sum(widths[i] for i in kept) + len(self._GAP) * (len(kept) - 1) <= room:
                break
            kept.remove(index)

        def line(cells: tuple[str, ...]) -> str:
            return self._GAP.join(
                cells[i].rjust(widths[i]) if self.COLUMNS[i][1] else cells[i].ljust(widths[i])
                for i in kept
            )

        text = Text(line(header), self.component_style("model-table--header"), no_wrap=True)
        for row in self.shown:
            text.append("\n" + line(row))
        return text
