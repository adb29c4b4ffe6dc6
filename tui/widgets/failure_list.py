"""The failures as a list grouped by error kind, with a selection: a Line API widget.

A large run can end with a hundred thousand failures (a bad key, a spent
quota), and Textual's ``DataTable`` takes seconds to load that many rows and a
third of a second per paint. Like the run screen's item table, this list keeps
what it shows as a flat list of integers (a result index, or a group header),
built once and again when a group is folded or unfolded (O(rows)), and
``render_line`` draws only the lines on screen from the results it was given.
Every item stays reachable; nothing is cut to "the first N".

Selection is view state and lives here; what to do with it (retry, inspect) is
the screen's, told by ``ItemOpened`` and read from ``selected_keys``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine import ItemResult
from tui._format import squeezed
from tui.widgets._columns import ATTEMPTS_WIDTH, ID_WIDTH, MODEL_WIDTH, column_width, fit

_INDENT: Final = "  "
_MARKS: Final = ("[ ] ", "[x] ")
_FOLDED: Final = ("▾ ", "▸ ")


def _widest(texts: Iterable[str]) -> int:
    return max(map(cell_len, texts), default=0)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def kind_of(result: ItemResult) -> str:
    """The group a result goes in: its error kind, or its status when it has no error."""
    return result.error.kind if result.error is not None else result.status


@dataclass(slots=True)
class FailureGroup:
    """One error kind's items, and the list's view state for them."""

    kind: str
    members: list[int]
    """Indices into the results, in the order given."""
    selected: int = 0
    folded: bool = False


class FailureList(ScrollView, can_focus=True):
    """Group header lines with counts, each followed by its items; space selects."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "failure-list--header",
        "failure-list--cursor",
        "failure-list--dim",
        "failure-list--error",
        "failure-list--selected",
    }

    DEFAULT_CSS = """
    FailureList {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: scroll;
        & > .failure-list--header { color: $text; text-style: bold; }
        & > .failure-list--dim { color: $text-muted; }
        & > .failure-list--error { color: $text-error; }
        & > .failure-list--selected { color: $text-accent; text-style: bold; }
        & > .failure-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .failure-list--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="failure_list.cursor_up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="failure_list.cursor_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="failure_list.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="failure_list.page_down"),
        Binding("home", "first", "First", show=False, id="failure_list.first"),
        Binding("end", "last", "Last", show=False, id="failure_list.last"),
        Binding("left", "fold", "Fold group", show=False, id="failure_list.fold"),
        Binding("right", "unfold", "Unfold group", show=False, id="failure_list.unfold"),
        Binding("space", "toggle_item", "Select", id="failure_list.toggle_item"),
        Binding("a", "select_group", "Select group", id="failure_list.select_group"),
        Binding("enter", "open", "Inspect", id="failure_list.open"),
    ]

    class ItemOpened(Message):
        """The user pressed enter on an item, or double-clicked one."""

        def __init__(self, failure_list: FailureList, result: ItemResult) -> None:
            super().__init__()
            self.failure_list = failure_list
            self.result = result

        @property
        def control(self) -> FailureList:
            return self.failure_list

    def __init__(
        self,
        results: Sequence[ItemResult],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.results = results
        by_kind: dict[str, FailureGroup] = {}
        for index, result in enumerate(results):
            kind = kind_of(result)
            group = by_kind.get(kind)
            if group is None:
                group = by_kind[kind] = FailureGroup(kind, [])
            group.members.append(index)
        self.groups = sorted(by_kind.values(), key=lambda g: (-len(g.members), g.kind))
        """Largest group first."""
        self._group_of = [0] * len(results)
        for number, group in enumerate(self.groups):
            for index in group.members:
                self._group_of[index] = number
        self.selected: set[int] = set()
        """Indices into ``results`` of the selected items."""
        self.cursor = 0
        """Index into ``_lines`` of the highlighted line."""
        self._lines: list[int] = []
        """What each line shows: a result index (>= 0) or a group header (``-1 - group``)."""
        self._id_width = column_width(_widest(result.id for result in results), ID_WIDTH)
        self._model_width = column_width(_widest({result.model for result in results}), MODEL_WIDTH)
        self._styles: dict[str, Style] = {}
        self._build_lines()

    # -- public ------------------------------------------------------------------

    @property
    def selected_keys(self) -> tuple[tuple[str, str], ...]:
        """The selected items' (model, id), in the order the results were given."""
        return tuple(self.results[index].key for index in sorted(self.selected))

    @property
    def cursor_group(self) -> FailureGroup | None:
        if not self._lines:
            return None
        return self.groups[self._group_at(self.cursor)]

    @property
    def cursor_result(self) -> ItemResult | None:
        """The item under the cursor, or None on a group header."""
        if self._lines and self._lines[self.cursor] >= 0:
            return self.results[self._lines[self.cursor]]
        return None

    def select_keys(self, keys: Iterable[tuple[str, str]]) -> None:
        """Select the items with these (model, id) keys (a list rebuilt keeps its selection)."""
        wanted = set(keys)
        for index, result in enumerate(self.results):
            if result.key in wanted and index not in self.selected:
                self.selected.add(index)
                self.groups[self._group_of[index]].selected += 1
        self._show_place()
        self.refresh()

    def move_cursor(self, line: int) -> None:
        self.cursor = max(0, min(line, len(self._lines) - 1))
        top = round(self.scroll_y)
        height = max(1, self.scrollable_content_region.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self._show_place()
        self.refresh()

    # -- actions -----------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.scrollable_content_region.height)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.scrollable_content_region.height)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._lines) - 1)

    def action_toggle_item(self) -> None:
        """Select or unselect the item under the cursor (on a header: its whole group)."""
        if not self._lines:
            return
        line = self._lines[self.cursor]
        if line < 0:
            self.action_select_group()
            return
        group = self.groups[self._group_of[line]]
        if line in self.selected:
            self.selected.discard(line)
            group.selected -= 1
        else:
            self.selected.add(line)
            group.selected += 1
        self.move_cursor(self.cursor + 1)

    def action_select_group(self) -> None:
        """Select every item of the cursor's group, or unselect them if all were."""
        group = self.cursor_group
        if group is None:
            return
        if group.selected == len(group.members):
            self.selected.difference_update(group.members)
            group.selected = 0
        else:
            self.selected.update(group.members)
            group.selected = len(group.members)
        self._show_place()
        self.refresh()

    def action_open(self) -> None:
        """Inspect the item under the cursor; on a header, fold or unfold its group."""
        if not self._lines:
            return
        entry = self._lines[self.cursor]
        if entry >= 0:
            self.post_message(self.ItemOpened(self, self.results[entry]))
        else:
            number = -1 - entry
            self._set_folded(number, not self.groups[number].folded)

    def action_fold(self) -> None:
        if self._lines:
            self._set_folded(self._group_at(self.cursor), True)

    def action_unfold(self) -> None:
        if self._lines:
            self._set_folded(self._group_at(self.cursor), False)

    # -- Textual hooks -----------------------------------------------------------

    def on_mount(self) -> None:
        self._show_place()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        line = round(self.scroll_y) + offset.y
        if line >= len(self._lines):
            return
        self.move_cursor(line)
        if self._lines[line] < 0 or event.chain >= 2:
            self.action_open()
        elif offset.x < len(_INDENT) + len(_MARKS[0]):
            self.action_toggle_item()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        line = round(self.scroll_y) + y
        if line >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        entry = self._lines[line]
        cursor = line == self.cursor
        if entry < 0:
            parts = self._header_parts(self.groups[-1 - entry])
        else:
            parts = self._item_parts(entry, width)
        base = self.rich_style
        if cursor:
            style = base + self._style("cursor")
            return Strip([Segment("".join(text for text, _ in parts), style)]).adjust_cell_length(
                width, style
            )
        segments = [
            Segment(text, base + self._style(name) if name else base) for text, name in parts
        ]
        return Strip(segments).adjust_cell_length(width, base)

    # -- internals ---------------------------------------------------------------

    def _header_parts(self, group: FailureGroup) -> list[tuple[str, str]]:
        count = len(group.members)
        text = f"{_FOLDED[group.folded]}{group.kind}  {count:,} item{'s' if count != 1 else ''}"
        if group.selected:
            text += f" · {group.selected:,} selected"
        return [(text, "header")]

    def _item_parts(self, index: int, width: int) -> list[tuple[str, str]]:
        result = self.results[index]
        mark = _MARKS[index in self.selected]
        cells = (
            f"{fit(result.id, self._id_width)} "
            f"{fit(squeezed(result.model, self._model_width), self._model_width)} "
            f"{str(result.attempts).rjust(ATTEMPTS_WIDTH)}  "
        )
        used = len(_INDENT) + len(mark) + cell_len(cells)
        error = result.error
        message = "" if error is None else _one_line(error.message)
        return [
            (_INDENT, ""),
            (mark, "selected" if index in self.selected else "dim"),
            (cells, ""),
            (fit(message, max(0, width - used)), "error" if result.status == "failed" else "dim"),
        ]

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"failure-list--{name}")
        return style

    def _group_at(self, line: int) -> int:
        entry = self._lines[line]
        return -1 - entry if entry < 0 else self._group_of[entry]

    def _set_folded(self, number: int, folded: bool) -> None:
        group = self.groups[number]
        if group.folded == folded:
            return
        group.folded = folded
        self._build_lines()
        self.move_cursor(self._lines.index(-1 - number))

    def _build_lines(self) -> None:
        lines: list[int] = []
        for number, group in enumerate(self.groups):
            lines.append(-1 - number)
            if not group.folded:
                lines.extend(group.members)
        self._lines = lines
        self.virtual_size = Size(self.scrollable_content_region.width, len(lines))
        self.refresh()

    def _show_place(self) -> None:
        """The cursor's group (its header may be scrolled away) and the selection, in the border."""
        group = self.cursor_group
        parts = [] if group is None else [group.kind]
        if self.selected:
            parts.append(f"{len(self.selected):,} selected")
        self.border_subtitle = " · ".join(parts)
