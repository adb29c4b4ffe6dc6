"""The question asked when the user quits while a run is going.

The engine runs inside the app's own event loop, so quitting the app ends the
run either way; what the user chooses is how. Both ways out keep the run
resumable (the log holds every finished item; unfinished ones run again on
resume), so the dialog says what each costs rather than warning about loss.

The screen only answers; the app acts on the answer (``Run.stop()`` or
``Run.abort()``, waits for the run to end, then exits).
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.widgets.button import ButtonVariant

QuitChoice = Literal["stop", "abort", "cancel"]
"""``stop``: send nothing more, let calls in flight finish and be logged, then quit.
``abort``: cancel calls in flight too (they run again on resume), then quit.
``cancel``: keep running; do not quit."""

CHOICES: Final[tuple[tuple[QuitChoice, str, str, ButtonVariant], ...]] = (
    ("stop", "Stop and keep it resumable", "s", "primary"),
    ("abort", "Quit now, abort calls in flight", "a", "error"),
    ("cancel", "Keep running", "k", "default"),
)
"""(answer, button label, key, button variant) in the order the buttons are shown."""
_BY_BUTTON: Final[dict[str, QuitChoice]] = {f"quit-{choice[0]}": choice[0] for choice in CHOICES}


class QuitScreen(ModalScreen[QuitChoice]):
    """Asks how to quit a live run; dismisses with a ``QuitChoice``."""

    CSS_PATH = "screens.tcss"
    AUTO_FOCUS = "#quit-stop"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('stop')", "Stop, resumable", id="quit.stop"),
        Binding("a", "choose('abort')", "Abort calls", id="quit.abort"),
        Binding("k,escape", "choose('cancel')", "Keep running", id="quit.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog") as dialog:
            dialog.border_title = "A run is going"
            yield Static(
                "Quitting ends the run. Finished items stay in its log, and the rest "
                "run when you resume it from History or with batchdeck resume.",
                markup=False,
            )
            for choice, label, key, variant in CHOICES:
                yield Button(
                    f"{label} ({key})", id=f"quit-{choice}", classes="choice", variant=variant
                )

    def action_choose(self, choice: QuitChoice) -> None:
        self.dismiss(choice)

    @on(Button.Pressed, ".choice")
    def _chosen(self, event: Button.Pressed) -> None:
        self.dismiss(_BY_BUTTON[event.button.id or ""])
