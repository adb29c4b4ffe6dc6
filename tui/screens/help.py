"""The ``?`` screen: every key that works where the user was, and what it does.

It lists the bindings active on the screen underneath (the focused widget's,
its ancestors' and the app's), captured when the help was asked for, so it
cannot drift from the keys that actually work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


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
            binding = active.binding
            if binding.system or not binding.description:
                continue
            where = type(active.node).__name__
            if (binding.action, where) in seen:
                continue
            seen.add((binding.action, where))
            rows.append((self.app.get_key_display(binding), binding.description, where))
        for row in sorted(rows, key=lambda row: (row[2], row[1])):
            table.add_row(*row)
        with Vertical(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            yield table
            yield Static("ctrl+p opens the command palette, which reaches every action.")
