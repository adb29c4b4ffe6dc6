"""A note that shows for a moment and is replaced by the next: a toast that updates.

Pressing ``+`` ten times should say "Workers: 12" once, not stack ten toasts.
Textual's toasts cannot be updated or taken back through its public API, so the
run screen says such passing figures here instead: one note in the toasts'
corner (bottom right, above the footer, on a layer of its own so nothing moves
when it shows), whose text each ``show`` replaces and whose timer each ``show``
starts again.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Container
from textual.timer import Timer
from textual.widgets import Static


class Flash(Container):
    """Shows the last ``show``'s text until ``seconds`` pass without another."""

    DEFAULT_CSS = """
    Flash {
        layer: flash;
        dock: bottom;
        width: 1fr;
        height: auto;
        align: right bottom;
        margin-bottom: 1;
        display: none;
    }
    Flash > Static {
        width: auto;
        max-width: 50%;
        padding: 1 2;
        background: $panel-lighten-1;
        border-left: outer $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(markup=False)

    @property
    def text(self) -> str:
        """What the note says (empty once it has gone)."""
        return str(self.query_one(Static).content) if self.display else ""

    def show(self, text: str, seconds: float) -> None:
        self.query_one(Static).update(text)
        self.display = True
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(seconds, self._hide)

    def _hide(self) -> None:
        self.display = False
        self._timer = None
