"""Bases for widgets drawn from a ``RunModel``: repaint only when the model moved.

The run screen calls ``sync()`` on each of them from its refresh timer; a
widget compares the model's ``version`` with the one it last drew and does
work only when it moved, so an idle run costs nothing per tick. They read the
model, never the engine: attributes down, and nothing here does I/O.

``ModelTable`` is for the small per-model tables: a run has a handful of
models, so Textual's ``DataTable`` is the right tool there (unlike the item
table), and cells are rewritten only when their text changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from tui.model import RunModel

Cell = str | Text


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

    def model_changed(self) -> None:
        self.refresh()


class ModelTable(ModelSync, DataTable[Cell]):
    """A few keyed rows computed from the model by ``model_rows()``; ``COLUMNS`` is (key, label)."""

    COLUMNS: ClassVar[Sequence[tuple[str, str]]] = ()

    def __init__(
        self,
        model: RunModel,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, cursor_type="none")
        self.model = model
        self._shown: dict[str, tuple[Cell, ...]] = {}

    def model_rows(self) -> Mapping[str, tuple[Cell, ...]]:
        """Row key -> one cell per column, in display order."""
        raise NotImplementedError

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)
        self.model_changed()

    def model_changed(self) -> None:
        for key, cells in self.model_rows().items():
            shown = self._shown.get(key)
            if shown is None:
                self.add_row(*cells, key=key)
            else:
                for (column, _), old, new in zip(self.COLUMNS, shown, cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, new)
            self._shown[key] = cells
