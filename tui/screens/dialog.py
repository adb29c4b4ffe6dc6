"""A question asked over the run screen, answered by one of a few buttons or their keys.

Quitting during a run and stopping a run with provider batch jobs both ask how, and
both only answer: the app or the run screen acts on the answer. A subclass names its
answers (``CHOICES``, the first one focused, so enter takes it: make it the safe one),
its title and its text; its ``BINDINGS`` give each answer's key (with an id, as every
binding of batchdeck has).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.widgets.button import ButtonVariant

Answer = TypeVar("Answer", bound=str)


class ChoiceDialog(ModalScreen[Answer], Generic[Answer]):
    """Dismisses with the answer chosen, by button or key."""

    CSS_PATH = "screens.tcss"

    PREFIX: ClassVar[str]
    """The dialog's id is ``<PREFIX>-dialog``, each button's ``<PREFIX>-<answer>``."""
    CHOICES: ClassVar[tuple[tuple[str, str, str, ButtonVariant], ...]]
    """(answer, button label, key, button variant) in the order the buttons are shown."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each answer's key (the last answer's escape too), and the first answer focused."""
        if "CHOICES" in cls.__dict__:
            last = cls.CHOICES[-1][0]
            cls.BINDINGS = [
                Binding(
                    key + (",escape" if choice == last else ""), f"choose('{choice}')", label,
                    id=f"{cls.PREFIX}.{choice}",
                )
                for choice, label, key, _ in cls.CHOICES
            ]  # fmt: skip
            cls.AUTO_FOCUS = f"#{cls.PREFIX}-{cls.CHOICES[0][0]}"
        super().__init_subclass__(**kwargs)

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(id=f"{self.PREFIX}-dialog", classes="dialog") as dialog:
            dialog.border_title = self._title
            yield Static(self._text, markup=False)
            for choice, label, key, variant in self.CHOICES:
                yield Button(
                    f"{label} ({key})", id=f"{self.PREFIX}-{choice}", classes="choice",
                    variant=variant,
                )  # fmt: skip

    def action_choose(self, choice: str) -> None:
        self.dismiss(cast(Answer, choice))

    @on(Button.Pressed, ".choice")
    def _chosen(self, event: Button.Pressed) -> None:
        self.action_choose((event.button.id or "").removeprefix(f"{self.PREFIX}-"))
