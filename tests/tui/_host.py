"""Bare apps for Pilot and snapshot tests (and benchmarks) of one screen or widget on its own.

The screens under test are pushed over a plain default screen, as the real app
will push them over the run screen, with batchdeck's themes registered. The item
table is shown alone over a model the test feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen

from engine._events import Event
from themes import DEFAULT_THEME, THEMES
from tui.model import RunModel
from tui.widgets.item_table import ItemTable

M = TypeVar("M", bound=Message)

SNAPSHOT_SIZE: Final = (120, 36)
"""The terminal size of every screen snapshot (as in test_snapshots.py)."""


class HostApp(App[None]):
    def __init__(self, screen: Screen[Any], *, theme: str = DEFAULT_THEME) -> None:
        super().__init__()
        for registered in THEMES:
            self.register_theme(registered)
        self.theme = theme
        self.hosted = screen
        self.answers: list[object] = []
        """What the hosted screen was dismissed with."""
        self.notices: list[tuple[str, str]] = []
        """(severity, message) of every notification, oldest first."""

    def on_mount(self) -> None:
        self.push_screen(self.hosted, self.answers.append)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        self.notices.append((severity, message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


class TableApp(App[None]):
    """An ``ItemTable`` over ``model``'s store, filling the screen."""

    def __init__(self, model: RunModel) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield ItemTable(self.model.store)

    def on_mount(self) -> None:
        self.query_one(ItemTable).refresh_rows()

    def feed(self, events: list[Event]) -> None:
        """Fold ``events`` into the model and let the table catch up, as the run screen's tick."""
        self.model.apply_all(events)
        self.query_one(ItemTable).refresh_rows()


def posted(messages: Iterable[Message], kind: type[M]) -> list[M]:
    """Each ``kind`` message once (``message_hook`` sees a bubbling message at every pump)."""
    return list({id(m): m for m in messages if isinstance(m, kind)}.values())


def assert_bindings_have_ids(*classes: type[DOMNode]) -> None:
    """Every binding the classes declare has an id (ARCHITECTURE.md, "The app"), so users
    can remap it."""
    declared = [binding for cls in classes for binding in cls.__dict__.get("BINDINGS", [])]
    assert declared
    for binding in declared:
        assert isinstance(binding, Binding) and binding.id, binding
