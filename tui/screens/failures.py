"""Failed and skipped items grouped by error kind: pick some, retry them, or inspect one.

The list itself (grouping, folding, selection) is ``FailureList``; this screen
adds the summary line and the keys that act on the selection. Retrying and
inspecting are the app's: the screen posts ``RetryRequested`` or
``InspectRequested``.

While it is open it follows the run's ``ItemStore`` (the rows the run screen
folds from events): an item that is run again and ends ok leaves the list, one
in flight again leaves it too, and when rows failed that the list has not got
(or failed again), the failures are read from the log anew. The list is
rebuilt then, keeping the selection of the items still in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import ItemResult
from tui.model import ItemStore
from tui.widgets.failure_list import FailureList

FOLLOW_EVERY_S: Final = 0.5
"""How often an open failures list checks the run's rows for items that moved."""


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
        store: ItemStore | None = None,
        reload: Callable[[], Awaitable[list[ItemResult]]] | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        """``store`` and ``reload``: the run's rows to follow, and how to read its failures
        from the log again when rows failed that the list has not got."""
        super().__init__(name=name, id=id)
        self._store = store
        self._reload = reload
        self._seen_version = -1
        self._rebuilding = False
        self._take(results)

    def _take(self, results: Sequence[ItemResult]) -> None:
        self.results, self._versions = self._still_failing(results)

    def _still_failing(
        self, results: Sequence[ItemResult]
    ) -> tuple[list[ItemResult], list[tuple[int, int] | None]]:
        """The failed and skipped ``results`` the run's rows still say failed or skipped,
        with each row's (position, version) as of now (None for a row the store lacks)."""
        store = self._store
        kept: list[ItemResult] = []
        versions: list[tuple[int, int] | None] = []
        for result in results:
            if result.status == "ok":
                continue
            position = None if store is None else store.position(result.model, result.id)
            if store is not None and position is not None:
                if store.status_of(position) not in ("failed", "skipped"):
                    continue
                versions.append((position, store.version_of(position)))
            else:
                versions.append(None)
            kept.append(result)
        return kept, versions

    def _summary(self) -> str:
        failed = sum(1 for result in self.results if result.status == "failed")
        skipped = len(self.results) - failed
        if not self.results:
            return "Nothing failed and nothing was skipped."
        return f"{failed:,} failed · {skipped:,} skipped"

    def compose(self) -> ComposeResult:
        yield Static(self._summary(), id="failures-summary", markup=False)
        failures = FailureList(self.results, id="failures")
        failures.border_title = "Failures by kind"
        yield failures
        yield Footer()

    def on_mount(self) -> None:
        if self._store is not None:
            self._seen_version = self._store.version
            self.set_interval(FOLLOW_EVERY_S, self._follow)

    async def _follow(self) -> None:
        store = self._store
        assert store is not None
        if store.version == self._seen_version or self._rebuilding:
            return
        self._seen_version = store.version
        kept, moved = [], False
        for result, watched in zip(self.results, self._versions, strict=True):
            if watched is None:
                kept.append(result)
                continue
            position, version = watched
            status = store.status_of(position)
            if status in ("failed", "skipped"):
                kept.append(result)
                moved |= store.version_of(position) != version  # failed again: new record
        failing = store.count("failed") + store.count("skipped")
        if (moved or failing > len(kept)) and self._reload is not None:
            self._read_again()
        elif len(kept) != len(self.results):
            await self._rebuild(kept)

    @work(group="failures-follow", exclusive=True, exit_on_error=False)
    async def _read_again(self) -> None:
        assert self._reload is not None
        await self._rebuild(await self._reload())

    async def _rebuild(self, results: Sequence[ItemResult]) -> None:
        """Show ``results`` in a new list, keeping the selection of the items still in it."""
        self._rebuilding = True
        try:
            await self._replace_list(results)
        finally:
            self._rebuilding = False

    async def _replace_list(self, results: Sequence[ItemResult]) -> None:
        old = self.query_one(FailureList)
        selected, had_focus, title = old.selected_keys, old.has_focus, old.border_title
        kept, versions = self._still_failing(results)
        fresh = FailureList(kept, id="failures")
        fresh.border_title = title
        await old.remove()
        await self.mount(fresh, after="#failures-summary")
        fresh.select_keys(selected)
        if had_focus:
            fresh.focus()
        self.results, self._versions = kept, versions
        self.query_one("#failures-summary", Static).update(self._summary())

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
