"""Failed and skipped items grouped by error kind: pick some, retry them, or inspect one.

The list itself (grouping, folding, selection) is ``FailureList``; this screen
adds the summary line and the keys that act on the selection. Retrying and
inspecting are the app's: the screen posts ``RetryRequested`` or
``InspectRequested``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import ItemResult
from tui.widgets.failure_list import FailureList


class FailuresScreen(Screen[None]):
    """Failed and skipped results; ``r`` / ``R`` ask the app to retry them, enter to inspect one."""

    CSS_PATH = "screens.tcss"
    AUTO_FOCUS = "#failures"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back", id="failures.back"),
        Binding("r", "retry_selected", "Retry selected", id="failures.retry_selected"),
        Binding("R", "retry_failed", "Retry all failed", id="failures.retry_failed"),
    ]

    class RetryRequested(Message):
        """The user asked to run these (model, id) pairs again."""

        def __init__(self, keys: tuple[tuple[str, str], ...]) -> None:
            super().__init__()
            self.keys = keys

    class InspectRequested(Message):
        """The user asked to see one result in the inspector."""

        def __init__(self, result: ItemResult) -> None:
            super().__init__()
            self.result = result

    def __init__(
        self,
        results: Sequence[ItemResult],
        *,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.results = [result for result in results if result.status != "ok"]

    def compose(self) -> ComposeResult:
        failed = sum(1 for result in self.results if result.status == "failed")
        skipped = len(self.results) - failed
        summary = f"{failed:,} failed · {skipped:,} skipped"
        if not self.results:
            summary = "Nothing failed and nothing was skipped."
        yield Static(summary, id="failures-summary", markup=False)
        failures = FailureList(self.results, id="failures")
        failures.border_title = "Failures by kind"
        yield failures
        yield Footer()

    def action_retry_selected(self) -> None:
        keys = self.query_one(FailureList).selected_keys
        if not keys:
            self.notify(
                "Nothing is selected: space selects an item, a selects its group.",
                severity="warning",
            )
            return
        self._request(keys)

    def action_retry_failed(self) -> None:
        keys = tuple(result.key for result in self.results if result.status == "failed")
        if not keys:
            self.notify("No item failed; skipped items retry only when selected.")
            return
        self._request(keys)

    def _request(self, keys: tuple[tuple[str, str], ...]) -> None:
        self.post_message(self.RetryRequested(keys))
        self.dismiss()

    @on(FailureList.ItemOpened, "#failures")
    def _inspect(self, event: FailureList.ItemOpened) -> None:
        self.post_message(self.InspectRequested(event.result))
