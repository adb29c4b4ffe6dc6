"""The ``?`` screen: every key that works where the user was, and what it does.

It lists the bindings active on the screen underneath (the focused widget's,
its ancestors' and the app's), captured when the help was asked for, so it
cannot drift from the keys that actually work. The screen's own keys come
first, then the focused widget's, then the app's; "where" names a place as the
user sees it (the screen, the pane's title), never a class name. The editing
keys of Textual's own text fields (cursor moves, delete word) are the same
everywhere and would bury the screen's keys: only those the footer shows are
listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static


def where(node: DOMNode) -> str:
    """A binding's place as the user knows it: ``everywhere``, the screen's name, or the
    widget's (or its pane's) title."""
    if isinstance(node, App):
        return "everywhere"
    if isinstance(node, Screen):
        return f"{_words(type(node).__name__.removesuffix('Screen'))} screen"
    widget: DOMNode | None = node
    while isinstance(widget, Widget) and not isinstance(widget, Screen):
        if widget.border_title:  # "Items · failed": the place, not what it shows now
            return str(widget.border_title).partition(" · ")[0]
        widget = widget.parent
    return _words(type(node).__name__)


def _words(name: str) -> str:
    """``ItemTable`` -> ``Item table``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return spaced[:1].upper() + spaced[1:].lower()


def _generic(node: DOMNode, binding: Binding) -> bool:
    """An editing key of one of Textual's own widgets that the footer does not show."""
    return type(node).__module__.startswith("textual.") and not binding.show


def _rank(node: DOMNode) -> int:
    return 0 if isinstance(node, Screen) else 2 if isinstance(node, App) else 1


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, bindings: Mapping[str, ActiveBinding]) -> None:
        super().__init__()
        self._shown_bindings = bindings

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(cursor_type="row", id="help-keys")
        table.add_columns("key", "does", "where")
        seen: set[tuple[str, str]] = set()
        rows = []
        for active in self._shown_bindings.values():
            binding, node = active.binding, active.node
            if binding.system or not binding.description or _generic(node, binding):
                continue
            place = where(node)
            if (binding.action, place) in seen:
                continue
            seen.add((binding.action, place))
            key = self.app.get_key_display(binding)
            rows.append((_rank(node), place, binding.description, key))
        for _, place, description, key in sorted(rows):
            table.add_row(key, description, place)
        with Vertical(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            yield table
            yield Static("ctrl+p opens the command palette, which reaches every action.")
