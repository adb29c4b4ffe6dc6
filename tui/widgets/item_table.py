"""The live item table: a Line API widget that draws only the rows on screen.

Textual's ``DataTable`` rebuilds caches over all rows on every update and
cannot hold a large run (at 100k rows a paint takes about 300 ms). This widget
keeps no rows of its own: it reads an ``ItemStore`` through a view (all rows,
or one status bucket), and ``render_line`` maps a screen line to a view index
to a store position in O(1). A rendered row is kept as a ``Strip`` in an LRU
cache keyed by its store position, its ``version`` and whether the cursor is on
it, so a frame costs one lookup per unchanged row, a row that changes simply
gets a new key, and scrolling back over recent rows finds them still drawn.

The screen calls ``refresh_rows()`` from its 10-20 Hz timer after folding
events into the model; it compares what each screen line shows now with what
was last drawn there and repaints only the lines that differ
(``refresh_lines``), or scrolls, in follow-the-tail mode, which repaints the
lot from the cache. The row count is the widget's ``virtual_size``, from which
Textual keeps the scrollbar in step; the table never touches the scrollbar.

Line 0 is a fixed header; the view's row ``i`` sits on virtual line ``i + 1``.

A pipeline's table has a ``steps`` column: each row's item's step progress
(``2/3 classify``, ``1/3 classify: timeout``), which the store reads from the item's
lanes when the row is drawn.

The view can be filtered by status (cycled with ``f``, or picked with ``1``-``5``),
sorted by cost or latency, and a pipeline's by steps done (``o``); a pipeline's rows
can be kept to the items at one step (or stopped there, or done: ``t`` cycles); and
searched by id (``jump_to``). A sorted (or
step-filtered) view is a snapshot (sorting is O(n log n)): while rows keep changing it is
sorted again at most every ``RESORT_S`` seconds (less often when sorting takes long:
``RESORT_SHARE``), and following the tail is off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, get_args

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollTo, ScrollUp
from textual.strip import Strip

from tui import _format
from tui.model import (
    FINISHED,
    STATUS_FILTERS,
    ItemStore,
    Row,
    RowStatus,
    SortKey,
    StatusFilter,
)
from tui.widgets._columns import ATTEMPTS_WIDTH, ID_WIDTH, MODEL_WIDTH, column_width, fit

_FILTER_LABELS: Final[dict[StatusFilter, str]] = {
    "all": "all",
    "active": "in flight",
    "ok": "ok",
    "truncated": "truncated",
    "failed": "failed",
    "skipped": "skipped",
}
_SORTS: Final[tuple[SortKey | None, ...]] = (None, "cost", "latency", "steps")
_SORT_LABELS: Final[dict[SortKey, str]] = {
    "cost": "by cost, highest first",
    "latency": "by latency, highest first",
    "steps": "by steps done, fewest first",
}
_PROGRESS_WIDTH: Final = (len("steps"), 28)
"""Bounds of the step progress column: a step's name, and room for an error kind."""
_ERROR_ROOM: Final = len(": server_error")
_NARROW_LANE: Final = 16
"""The lane column of a pipeline's table gives way down to this width on a narrow screen."""
RESORT_S: Final = 2.0
"""A sorted view of a run that goes is sorted again at most this often..."""
RESORT_SHARE: Final = 0.05
"""...and at most this share of the time: sorting a million rows takes a fifth of a
second, a freeze the table must not have every two seconds."""
_CONTROL_CHARS: Final = {code: " " for code in [*range(32), 127]}
_GAP: Final = 1
_BAR_STEPS: Final = 8
"""Textual's scrollbar draws its thumb in eighths of a cell."""
_STRIP_CACHE_ROWS: Final = 1024
"""Rendered rows kept, the least recently drawn dropped first: many screens, so scrolling
back and forth hits the cache, and few enough that the collector has little to walk (a
strip is a dozen small objects)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """Column widths for one widget width; every row strip is built for one layout."""

    width: int
    id: int
    status: int
    progress: int
    """0: a run of one step, no progress column."""
    model: int
    attempts: int
    tokens: int
    cost: int
    latency: int
    preview: int


_STATUS_WIDTH: Final = max(len(status) for status in get_args(RowStatus))
_TOKENS_WIDTH: Final = 11
_COST_WIDTH: Final = 10
"""Holds `$0.0000021`: a cost below a cent keeps two significant digits (`_format.money`)."""
_LATENCY_WIDTH: Final = 6


def _cells(cells: Sequence[tuple[str, int, bool]]) -> list[str]:
    """Each ``(text, width, right_aligned)`` fitted to its width and followed by the gap
    (a column of no width is not shown: no text, no gap)."""
    gap = " " * _GAP
    return [fit(text, width, right=right) + gap if width else "" for text, width, right in cells]


def _cost(row: Row) -> str:
    """A finished row's cost; ``cached`` for an answer the response cache gave."""
    return "cached" if row.cached else _format.money(row.cost_usd)


def _runs(lines: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(first, count) of each run of consecutive numbers in the ascending ``lines``."""
    start = 0
    for end in range(1, len(lines) + 1):
        if end == len(lines) or lines[end] != lines[end - 1] + 1:
            yield lines[start], end - start
            start = end


class ItemTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Every (item, model) pair of a run, coloured by status, for a store of any size."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "item-table--header",
        "item-table--cursor",
        "item-table--running",
        "item-table--retrying",
        "item-table--submitted",
        "item-table--pending",
        "item-table--ok",
        "item-table--failed",
        "item-table--skipped",
        "item-table--truncated",
        "item-table--dim",
    }

    DEFAULT_CSS = """
    ItemTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: scroll;
        & > .item-table--header { color: $text-muted; text-style: bold; }
        & > .item-table--dim { color: $text-muted; }
        & > .item-table--running { color: $text-primary; }
        & > .item-table--retrying { color: $text-warning; }
        & > .item-table--submitted { color: $text-accent; }
        & > .item-table--pending { color: $text-muted; }
        & > .item-table--ok { color: $text-success; }
        & > .item-table--failed { color: $text-error; }
        & > .item-table--skipped { color: $text-muted; }
        & > .item-table--truncated { color: $text-warning; }
        & > .item-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .item-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="item_table.cursor_up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="item_table.cursor_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="item_table.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="item_table.page_down"),
        Binding("home", "first", "First row", show=False, id="item_table.first"),
        Binding("end", "follow", "Follow", id="item_table.follow"),
        Binding("enter", "select", "Open", id="item_table.select"),
        Binding("f", "cycle_filter", "Filter", id="item_table.cycle_filter"),
        Binding("1", "filter('all')", "All rows", show=False, id="item_table.filter_all"),
        Binding(
            "2", "filter('active')", "Rows in flight", show=False, id="item_table.filter_active"
        ),
        Binding("3", "filter('ok')", "Ok rows", show=False, id="item_table.filter_ok"),
        Binding("4", "filter('failed')", "Failed rows", show=False, id="item_table.filter_failed"),
        Binding(
            "5", "filter('skipped')", "Skipped rows", show=False, id="item_table.filter_skipped"
        ),
        Binding("o", "cycle_sort", "Sort", id="item_table.cycle_sort"),
        Binding("t", "cycle_step", "Items at a step", show=False, id="item_table.cycle_step"),
    ]

    status_filter: var[StatusFilter] = var[StatusFilter]("all")
    """Which rows the table shows."""
    follow = var(True)
    """Keep the cursor on the newest row; moving up turns it off, ``End`` back on."""
    step_filter: var[str | None] = var[str | None](None)
    """A pipeline's rows whose item is at this step or stopped there (``""``: done); None:
    every row."""
    sort_key: var[SortKey | None] = var[SortKey | None](None)
    """None: rows in the order the run reached them; else the dearest or slowest first."""

    class RowSelected(Message):
        """The user pressed Enter on a row or clicked one."""

        def __init__(self, item_table: ItemTable, row: Row) -> None:
            super().__init__()
            self.item_table = item_table
            self.row = row
            """The row as it was when selected (a frozen snapshot)."""

        @property
        def control(self) -> ItemTable:
            return self.item_table

    def __init__(
        self,
        store: ItemStore,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._store = store
        self._view: Sequence[int] = store.view("all")
        self._sorted: list[int] = []
        self._sorted_at = (-1, -math.inf)
        """(store version, monotonic time) of the sorted view's snapshot."""
        self._resort_s = RESORT_S
        """How long after a snapshot the next may be taken (``RESORT_SHARE``)."""
        self.cursor = 0
        """Index into the current view of the highlighted row."""
        self._layout = self._layout_for(0)
        """Set from the current width before each paint (``render_lines``)."""
        self._strips: LRUCache[tuple[int, int, bool], Strip] = LRUCache(_STRIP_CACHE_ROWS)
        """(store position, row version, cursor) -> the row's strip in the current layout.
        A row that changes gets a new key, so no entry is ever stale: an old one just ages
        out (Textual's ``LRUCache`` keeps the first value set for a key)."""
        self._drawn: dict[int, tuple[int, int, bool]] = {}
        """Screen line -> (store position, row version, cursor) last rendered there."""
        self._styles: dict[str, Style] = {}
        self._thumb: tuple[int, int, int] | None = None
        """(start, length) of the scrollbar's thumb in eighths of a cell, and the bar's
        length, as the scrollbar last drew them."""

    # -- public ------------------------------------------------------------------

    def refresh_rows(self) -> None:
        """Catch up with the store: new rows, changed rows, follow the tail."""
        self._view = view = self._current_view()
        count = len(view)
        if count + 1 != self.virtual_size.height:
            self._set_row_count(count)
        if self._update_layout():
            self.refresh()
        if self.follow:
            self.cursor = max(0, count - 1)
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.cursor = min(self.cursor, max(0, count - 1))
            if self.scroll_y > self.max_scroll_y:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self._sync_scrollbar()
        self._refresh_changed_lines()

    @property
    def cursor_row(self) -> Row | None:
        """The highlighted row, or None when the view is empty."""
        if self.cursor < len(self._view):
            return self._store[self._view[self.cursor]]
        return None

    def move_cursor(self, index: int) -> None:
        """Highlight the view's row ``index`` (clamped) and scroll it into sight."""
        last = len(self._view) - 1
        self.cursor = max(0, min(index, last))
        self.follow = last >= 0 and self.cursor == last and self.follow
        self._scroll_cursor_into_view()
        self._refresh_changed_lines()

    # -- actions -----------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.follow = False
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.follow = False
        self.move_cursor(self.cursor - self._body_height())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._body_height())

    def action_first(self) -> None:
        self.follow = False
        self.move_cursor(0)

    def action_follow(self) -> None:
        self.follow = True
        self.refresh_rows()

    def action_select(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.RowSelected(self, row))

    def action_cycle_filter(self) -> None:
        following = STATUS_FILTERS.index(self.status_filter) + 1
        self.status_filter = STATUS_FILTERS[following % len(STATUS_FILTERS)]

    def action_filter(self, status: StatusFilter) -> None:
        self.status_filter = status

    def action_cycle_sort(self) -> None:
        sorts = _SORTS if self._store.steps else _SORTS[:-1]
        self.sort_key = sorts[(sorts.index(self.sort_key) + 1) % len(sorts)]

    def action_cycle_step(self) -> None:
        steps: list[str | None] = [None, *(step for step, _ in self._store.steps)]
        if len(steps) > 1:
            steps.append("")
        self.step_filter = steps[(steps.index(self.step_filter) + 1) % len(steps)]

    def jump_to(self, text: str) -> bool:
        """Highlight the row whose id is ``text``, else the next one whose id contains it
        (showing all rows if the current view does not hold it); False if no id does."""
        current = self.cursor_row
        position = self._store.find_id(text, -1 if current is None else current.position)
        if position is None:
            return False
        if position not in self._view:
            self.status_filter = "all"
            self.sort_key = None
            self.step_filter = None
        index = self._view.index(position)
        self.follow = False
        self.move_cursor(index)
        return True

    # -- Textual hooks -----------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)
        self._sync_scrollbar()

    def watch_sort_key(self) -> None:
        if self.sort_key is not None:
            self.follow = False
        self.watch_status_filter()

    def watch_step_filter(self) -> None:
        self.watch_status_filter()

    def watch_status_filter(self) -> None:
        order = "" if self.sort_key is None else f" · {_SORT_LABELS[self.sort_key]}"
        step = self.step_filter
        at = "" if step is None else f" · at {step}" if step else " · done"
        self.border_title = f"Items · {_FILTER_LABELS[self.status_filter]}{at}{order}"
        self._sorted_at = (-1, -math.inf)
        self.cursor = 0
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh_rows()
        self.refresh()

    def watch_follow(self) -> None:
        self._refresh_changed_lines()

    def on_mount(self) -> None:
        self.watch_status_filter()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._drawn.clear()

    def on_resize(self) -> None:
        self.refresh_rows()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    def on_scroll_up(self, message: ScrollUp) -> None:
        self.follow = False

    def on_scroll_to(self, message: ScrollTo) -> None:
        if message.y is not None and message.y < self.max_scroll_y:
            self.follow = False

    def on_enter(self, event: events.Enter) -> None:
        if event.node is self.vertical_scrollbar:
            self._sync_scrollbar()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        index = round(self.scroll_y) + offset.y - 1
        if index >= len(self._view):
            return
        self.follow = False
        self.move_cursor(index)
        self.action_select()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._update_layout()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        layout = self._layout
        if y == 0:
            self._drawn[0] = self._header_key()
            return self._header(layout)
        index = round(self.scroll_y) + y - 1
        view = self._view
        if index >= len(view):
            self._drawn.pop(y, None)
            return Strip.blank(layout.width, self._base_style())
        position = view[index]
        version = self._store.version_of(position)
        cursor = index == self.cursor
        key = self._drawn[y] = (position, version, cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_row(self._store[position], layout, cursor)
        return strip

    # -- internals ---------------------------------------------------------------

    def _current_view(self) -> Sequence[int]:
        store, sort_key, step = self._store, self.sort_key, self.step_filter
        if sort_key is None and step is None:
            return store.view(self.status_filter)
        version, at = self._sorted_at
        now = time.monotonic()
        if version != store.version and now - at >= self._resort_s:
            self._sorted = store.sorted_view(self.status_filter, sort_key, step)
            took = time.monotonic() - now
            self._sorted_at = (store.version, now)
            self._resort_s = max(RESORT_S, took / RESORT_SHARE)
        return self._sorted

    def _body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        top = round(self.scroll_y)
        body = self._body_height()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + body:
            self.scroll_to(y=self.cursor - body + 1, animate=False, immediate=True)

    def _set_row_count(self, count: int) -> None:
        """Resize the scrollable area without a screen layout.

        Assigning ``virtual_size`` (as Textual's ``Log`` does on every write)
        lays out and repaints the whole screen, which costs more than the
        rest of a frame; rows arrive on every tick, and only the lines that
        changed and, now and then, the scrollbar need drawing.
        """
        size = Size(self.scrollable_content_region.width, count + 1)
        self.set_reactive(ItemTable.virtual_size, size)

    def _sync_scrollbar(self) -> None:
        """Let Textual bring the scrollbar up to date when its thumb moves on screen, or
        whenever the pointer is on it or drags it (it drags by its own figures).

        Textual redraws the whole bar whenever its position or sizes change,
        which costs as much as the rest of a frame; at a million rows, a
        hundred new rows or a scroll of a hundred rows moves the thumb by
        nothing visible. The thumb geometry below is the bar's own (it draws
        in eighths of a cell). ``_scroll_update`` is what Textual runs after a
        layout to hand the bar its sizes: a private method, hence the upper
        bound on ``textual`` in pyproject.toml. ``ScrollView``'s own watcher
        hands it the position.
        """
        bar = self.vertical_scrollbar
        virtual = self.virtual_size.height
        window = self.scrollable_content_region.height
        length = bar.size.height
        thumb = max(1.0, window * length / virtual) if virtual else 0.0
        start = int((length - thumb) * self.scroll_y / max(1, virtual - window) * _BAR_STEPS)
        geometry = (start, math.ceil(thumb * _BAR_STEPS), length)
        if geometry != self._thumb or bar.mouse_over or bar.grabbed is not None:
            self._thumb = geometry
            self._scroll_update(self.virtual_size)
            super().watch_scroll_y(self.scroll_y, self.scroll_y)

    def _refresh_changed_lines(self) -> None:
        """Invalidate the screen lines whose row, version or cursor state moved."""
        top = round(self.scroll_y)
        view = self._view
        store = self._store
        drawn = self._drawn
        changed = []
        if drawn.get(0) != self._header_key():
            changed.append(0)
        for y in range(1, self._body_height() + 1):
            index = top + y - 1
            if index < len(view):
                position = view[index]
                if drawn.get(y) != (position, store.version_of(position), index == self.cursor):
                    changed.append(y)
            elif y in drawn:
                changed.append(y)
        for first, count in _runs(changed):
            self.refresh_lines(top + first, count)

    def _header_key(self) -> tuple[int, int, bool]:
        return (-1, len(self._view), self.follow)

    def _update_layout(self) -> bool:
        """Fit the columns to the current width and widest id/model; True if they moved."""
        layout = self._layout_for(self.scrollable_content_region.width)
        if layout == self._layout:
            return False
        self._layout = layout
        self._strips.clear()
        return True

    def _layout_for(self, width: int) -> _Layout:
        store = self._store
        id_width = column_width(store.widest_id, ID_WIDTH)
        model_width = column_width(store.widest_model, MODEL_WIDTH)
        progress = store.widest_progress
        progress_width = column_width(progress + _ERROR_ROOM, _PROGRESS_WIDTH) if progress else 0
        fixed = (
            id_width
            + _STATUS_WIDTH
            + (progress_width + _GAP if progress_width else 0)
            + model_width
            + ATTEMPTS_WIDTH
            + _TOKENS_WIDTH
            + _COST_WIDTH
            + _LATENCY_WIDTH
            + 7 * _GAP
        )
        tokens_width = _TOKENS_WIDTH
        if progress_width and fixed + _GAP > width:
            # a narrow pipeline table: the tokens, then the lane (cut in the middle) and the
            # error kind give way before the cost and time do
            over = fixed + _GAP - width
            tokens_width = 0
            over -= _TOKENS_WIDTH + _GAP
            model_cut = max(0, min(over, model_width - _NARROW_LANE))
            progress_cut = max(0, min(over - model_cut, progress_width - progress))
            model_width -= model_cut
            progress_width -= progress_cut
            fixed -= _TOKENS_WIDTH + _GAP + model_cut + progress_cut
        return _Layout(
            width=width,
            id=id_width,
            status=_STATUS_WIDTH,
            progress=progress_width,
            model=model_width,
            attempts=ATTEMPTS_WIDTH,
            tokens=tokens_width,
            cost=_COST_WIDTH,
            latency=_LATENCY_WIDTH,
            preview=max(0, width - fixed - _GAP),
        )

    def _style(self, name: str) -> Style:
        """A component's full style, cached until the next style update (theme, focus)."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"item-table--{name}")
        return style

    def _base_style(self) -> Style:
        style = self._styles.get("")
        if style is None:
            style = self._styles[""] = self.rich_style
        return style

    def _header(self, layout: _Layout) -> Strip:
        summary = f"{len(self._view):,} rows{' · following' if self.follow else ''}"
        title = "output / error"
        room = layout.preview - len(title) - 1
        preview = (
            f"{title} {summary.rjust(room)}"
            if room >= len(summary)
            else summary.rjust(layout.preview)
        )
        cells = _cells(
            (
                ("id", layout.id, False),
                ("status", layout.status, False),
                *((("steps", layout.progress, False),) if layout.progress else ()),
                ("model", layout.model, False),
                ("try", layout.attempts, True),
                ("in/out", layout.tokens, True),
                ("cost", layout.cost, True),
                ("time", layout.latency, True),
                (preview, layout.preview, False),
            ),
        )
        return self._line([(("".join(cells)), self._style("header"))], layout)

    def _render_row(self, row: Row, layout: _Layout, cursor: bool) -> Strip:
        status = row.status
        finished = status in FINISHED
        progress = row.progress
        id_cell, status_cell, progress_cell, model_cell, *figures, preview_cell = _cells(
            (
                (row.id, layout.id, False),
                (status, layout.status, False),
                ("" if progress is None else str(progress), layout.progress, False),
                (_format.squeezed_lane(row.model, layout.model), layout.model, False),
                (str(row.attempts) if row.attempts else "", layout.attempts, True),
                (
                    f"{_format.count(row.input_tokens)}/{_format.count(row.output_tokens)}"
                    if finished
                    else "",
                    layout.tokens,
                    True,
                ),
                (_cost(row) if finished else "", layout.cost, True),
                (_format.latency(row.latency_ms) if finished else "", layout.latency, True),
                (self._preview(row, layout.preview), layout.preview, False),
            ),
        )
        if cursor:
            text = "".join(
                [id_cell, status_cell, progress_cell, model_cell, *figures, preview_cell]
            )
            return self._line([(text, self._style("cursor"))], layout)
        base = self._base_style()
        status_style = self._style(status)
        preview_style = status_style if status in ("failed", "retrying") else base
        stopped = progress is not None and progress.error is not None
        return self._line(
            [
                (id_cell, base),
                (status_cell, status_style),
                (progress_cell, self._style("failed") if stopped else base),
                (model_cell, self._style("dim")),
                ("".join(figures), base),
                (preview_cell, preview_style),
            ],
            layout,
        )

    @staticmethod
    def _preview(row: Row, width: int) -> str:
        if row.status in ("ok", "running", "submitted", "pending"):
            text = row.preview
        elif row.status == "retrying":
            text = f"{row.error_kind}, retry in {row.delay_s:.1f}s: {row.preview}"
        else:
            text = f"{row.error_kind}: {row.preview}"
        return text[: width * 2].translate(_CONTROL_CHARS)

    def _line(self, parts: list[tuple[str, Style]], layout: _Layout) -> Strip:
        """One strip of exactly the layout's width; neighbours in one style share a segment
        (every segment costs again in each step of Textual's paint)."""
        merged: list[tuple[str, Style]] = []
        for text, style in parts:
            if merged and merged[-1][1] is style:
                merged[-1] = (merged[-1][0] + text, style)
            else:
                merged.append((text, style))
        segments = [Segment(text, style) for text, style in merged]
        text = "".join(text for text, _ in merged)
        if len(text) == layout.width and text.isascii():
            return Strip(segments, layout.width)
        return Strip(segments).adjust_cell_length(layout.width, self._base_style())
