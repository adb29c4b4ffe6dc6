"""The models to run, one line each, the name cut to the line's width.

Textual's ``SelectionList`` draws one checkbox per line and assumes an option is
one line: a name that wraps repeats the checkbox and reads as two models. So no
label may wrap. Cut at the end by ``text-overflow: ellipsis`` alone, models of
one family read the same (``openai:gpt-5.6-…`` three times at 80 columns); the
picker instead cuts each name in the middle to the width it is drawn at
(``tui._format.squeezed``), again whenever that width changes. The full name,
price and key of the highlighted model are the screen's detail line.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.widgets import SelectionList
from textual.widgets.selection_list import Selection

from tui._format import squeezed

GUTTER = 4
"""The cells the list draws before a label: its checkbox and a space."""


class ModelPicker(SelectionList[str]):
    """A ``SelectionList`` of ``provider:model`` specs, each with a dim note after it."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._notes: dict[str, str] = {}
        self._width = 0

    def add_model(self, spec: str, note: str, selected: bool) -> None:
        """Add ``spec`` (its ``note``, e.g. ``  no key``, after it) to the end."""
        self._notes[spec] = note
        self.add_option(Selection(self._label(spec), spec, selected))

    def set_note(self, index: int, note: str) -> None:
        """Say ``note`` after the model at ``index`` from now on."""
        spec = self.get_option_at_index(index).value
        self._notes[spec] = note
        self.replace_option_prompt_at_index(index, self._label(spec))

    def choose(self, specs: Sequence[str]) -> None:
        """Select exactly ``specs``, in their order (``selected`` keeps the order of picking,
        which is the order a step lists its models in)."""
        self.deselect_all()
        for spec in specs:
            self.select(spec)

    def specs(self) -> list[str]:
        return [self.get_option_at_index(i).value for i in range(self.option_count)]

    @property
    def label_width(self) -> int:
        """The cells a label is drawn in."""
        padding = self.get_component_styles("option-list--option").padding.width
        return self.scrollable_content_region.width - GUTTER - padding

    def _label(self, spec: str) -> Text:
        note = self._notes[spec]
        width = self.label_width
        if width <= 0:
            return Text.assemble(spec, (note, "dim"))
        if len(spec) + len(note) > width:
            note = note if width - len(note) >= len(spec) // 2 else ""
        return Text.assemble(squeezed(spec, width - len(note)), (note, "dim"))

    def on_resize(self, _event: events.Resize) -> None:
        width = self.label_width
        if width == self._width:
            return
        self._width = width
        for index, spec in enumerate(self.specs()):
            self.replace_option_prompt_at_index(index, self._label(spec))
