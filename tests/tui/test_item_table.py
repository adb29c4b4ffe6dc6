"""ItemTable: follow-the-tail, free scrolling, filtering, selection, and minimal repaints."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from textual import events
from textual.message import Message

from tests.tui._factories import done_items, finished, run_started, started
from tests.tui._host import TableApp
from tui.model import RunModel
from tui.widgets.item_table import _STRIP_CACHE_ROWS, ItemTable

pytestmark = pytest.mark.anyio

SIZE = (100, 20)


def _model(count: int) -> RunModel:
    model = RunModel(clock=lambda: 0.0)
    model.apply_all([run_started(), *done_items(count, fail_every=5)])
    return model


def _visible_ids(table: ItemTable) -> list[str]:
    lines = [table.render_line(y).text for y in range(1, table.scrollable_content_region.height)]
    return [line.split()[0] for line in lines if line.strip()]


def _record_renders(table: ItemTable) -> list[str]:
    """The id of every row the table renders from now on (a cache miss), in order."""
    rendered: list[str] = []
    original = table._render_row

    def spy(row, layout, cursor):  # type: ignore[no-untyped-def]
        rendered.append(row.id)
        return original(row, layout, cursor)

    table._render_row = spy  # type: ignore[method-assign]
    return rendered


async def test_follows_the_tail_by_default() -> None:
    app = TableApp(_model(100))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        assert table.follow
        assert table.cursor_row is not None and table.cursor_row.id == "item-00099"
        assert table.scroll_y == table.max_scroll_y
        assert _visible_ids(table)[-1] == "item-00099"
        app.feed([started("new-1"), started("new-2")])
        await pilot.pause()
        assert table.cursor_row.id == "new-2"  # type: ignore[union-attr]
        assert _visible_ids(table)[-1] == "new-2"
        assert "rows · following" in table.render_line(0).text
        assert str(table.border_title) == "Items · all"


async def test_moving_up_stops_following_and_end_resumes() -> None:
    app = TableApp(_model(100))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("up", "up")
        assert not table.follow
        assert table.cursor_row.id == "item-00097"  # type: ignore[union-attr]
        scroll = table.scroll_y
        app.feed([started(f"new-{n}") for n in range(30)])
        await pilot.pause()
        assert table.cursor_row.id == "item-00097"  # type: ignore[union-attr]
        assert table.scroll_y == scroll
        await pilot.press("end")
        assert table.follow
        assert table.cursor_row.id == "new-29"  # type: ignore[union-attr]
        assert table.scroll_y == table.max_scroll_y


async def test_keys_move_the_cursor_and_keep_it_on_screen() -> None:
    app = TableApp(_model(100))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("home")
        assert (table.cursor, table.scroll_y) == (0, 0)
        assert _visible_ids(table)[0] == "item-00000"
        await pilot.press("pagedown", "pagedown")
        body = table.scrollable_content_region.height - 1
        assert table.cursor == 2 * body
        assert table.scroll_y <= table.cursor < table.scroll_y + body
        await pilot.press("down", "k", "j", "j")
        assert table.cursor == 2 * body + 2
        await pilot.press("pageup")
        assert table.cursor == body + 2
        assert table.scroll_y <= table.cursor < table.scroll_y + body


async def test_wheel_up_stops_following() -> None:
    app = TableApp(_model(100))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        table.post_message(events.MouseScrollUp(table, 10, 5, 0, -1, 0, False, False, False))
        await pilot.pause()
        assert not table.follow
        assert table.scroll_y < table.max_scroll_y


async def test_the_filter_shows_one_status_and_follows_changes() -> None:
    app = TableApp(_model(20))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("f")
        assert table.status_filter == "active"
        assert _visible_ids(table) == []
        app.feed([started("x"), started("y")])
        await pilot.pause()
        assert _visible_ids(table) == ["x", "y"]
        app.feed([finished("x")])
        await pilot.pause()
        assert _visible_ids(table) == ["y"]
        await pilot.press("f", "f")
        assert table.status_filter == "failed"
        assert _visible_ids(table) == [f"item-{n:05d}" for n in range(0, 20, 5)]
        assert str(table.border_title) == "Items · failed"
        assert table.render_line(0).text.rstrip().endswith(" 4 rows · following")
        await pilot.press("f", "f", "f")
        assert table.status_filter == "all"


async def test_a_truncated_answer_is_its_own_status_and_filter() -> None:
    app = TableApp(_model(6))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        app.feed([started("cut"), finished("cut", status="truncated", kind="truncated")])
        await pilot.pause()
        row = next(
            table.render_line(y).text for y in range(1, 12) if "cut" in table.render_line(y).text
        )
        assert row.split()[:2] == ["cut", "truncated"]
        await pilot.press("f", "f", "f", "f", "f")
        assert table.status_filter == "truncated"
        assert _visible_ids(table) == ["cut"]
        assert app.model.done == 7


async def test_enter_and_click_post_row_selected() -> None:
    messages: list[Message] = []
    app = TableApp(_model(30))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("home", "down", "enter")
        await pilot.click(ItemTable, offset=(5, 4))
        await pilot.pause()
    # A message is seen once per node it bubbles through: keep each one once.
    unique = {id(m): m for m in messages if isinstance(m, ItemTable.RowSelected)}
    selected = list(unique.values())
    assert [m.row.id for m in selected] == ["item-00001", "item-00003"]
    assert selected[0].control is table
    assert selected[0].row.key == ("openai:gpt-4o-mini", "item-00001")
    assert selected[1].row.status == "ok"


async def test_a_click_on_the_header_selects_nothing() -> None:
    messages: list[Message] = []
    app = TableApp(_model(30))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.click(ItemTable, offset=(5, 0))
        await pilot.pause()
    assert not [m for m in messages if isinstance(m, ItemTable.RowSelected)]


async def test_only_changed_rows_are_rendered_again() -> None:
    app = TableApp(_model(100))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        table.focus()
        await pilot.press("up")
        await pilot.pause()
        rendered = _record_renders(table)
        app.feed([finished("item-00095", status="failed", kind="timeout"), started("offscreen")])
        await pilot.pause()
        assert rendered == ["item-00095"]
        app.feed([finished("item-00001")])
        await pilot.pause()
        assert rendered == ["item-00095"]


async def test_rows_seen_recently_stay_drawn_while_older_ones_make_room() -> None:
    """A screen looked at again is kept over rows drawn before it, however many rows pass
    through the cache (a cache wiped when full would draw it again)."""
    app = TableApp(_model(2000))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        table.focus()
        await pilot.press("home")
        await pilot.pause()
        pages = math.ceil(0.6 * _STRIP_CACHE_ROWS / (SIZE[1] - 2))
        rendered = _record_renders(table)
        for key in ("pagedown", "home", "end", "pageup"):  # the top, then the tail
            for _ in range(pages if key.startswith("page") else 1):
                await pilot.press(key)
                await pilot.pause()
        assert len(set(rendered)) > _STRIP_CACHE_ROWS
        rendered.clear()
        await pilot.press("home")
        await pilot.pause()
        assert _visible_ids(table)[0] == "item-00000"
        assert rendered == []


async def test_the_scrollbar_is_exact_whenever_the_pointer_is_on_it() -> None:
    """The table hands the bar new figures only when its thumb moves on screen, but the
    bar drags by them: once the pointer is on it they must be the table's own."""
    app = TableApp(_model(2000))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        bar = table.vertical_scrollbar
        app.feed([started(f"more-{n}") for n in range(3000)])
        await pilot.pause()
        exact = (table.virtual_size.height, table.scroll_y)
        assert (bar.window_virtual_size, bar.position) != exact  # the thumb sat still
        await pilot.hover(ItemTable, offset=(SIZE[0] - 1, 5))
        await pilot.pause()
        assert (bar.window_virtual_size, bar.position) == (
            table.virtual_size.height,
            table.scroll_y,
        )
        app.feed([started(f"later-{n}") for n in range(500)])
        await pilot.pause()
        assert bar.window_virtual_size == table.virtual_size.height == 5501


async def test_rows_show_figures_and_single_line_previews() -> None:
    model = RunModel(clock=lambda: 0.0)
    model.apply_all(
        [
            run_started(),
            finished("a", output="line one\nline two\ttabbed", cost=0.0123, tokens=(1500, 42)),
            finished("b", status="failed", kind="timeout", message="timed out after 60s"),
            started("c"),
        ]
    )
    app = TableApp(model)
    async with app.run_test(size=SIZE):
        table = app.query_one(ItemTable)
        header, a, b, c = (table.render_line(y).text for y in range(4))
        assert header.split()[:3] == ["id", "status", "model"]
        assert a.split()[:4] == ["a", "ok", "openai:gpt-4o-mini", "1"]
        assert "1.5k/42" in a and "$0.012" in a and "500ms" in a
        assert "line one line two tabbed" in a
        assert "timeout: timed out after 60s" in b
        assert c.split()[:2] == ["c", "running"]
        assert all(len(line) == table.scrollable_content_region.width for line in (a, b, c))


async def test_a_status_filter_is_picked_directly_by_its_number() -> None:
    app = TableApp(_model(20))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("4")
        assert table.status_filter == "failed"
        assert len(_visible_ids(table)) == 4
        await pilot.press("3")
        assert table.status_filter == "ok"
        await pilot.press("1")
        assert table.status_filter == "all"


async def test_sorting_puts_the_dearest_then_the_slowest_first() -> None:
    model = RunModel(clock=lambda: 0.0)
    model.apply_all(
        [
            run_started(),
            *(
                event
                for n, (cost, latency) in enumerate([(0.01, 900.0), (0.05, 100.0), (0.02, 5000.0)])
                for event in (
                    started(f"i{n}"),
                    finished(f"i{n}", cost=cost, latency_ms=latency),
                )
            ),
        ]
    )
    app = TableApp(model)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("o")
        assert table.sort_key == "cost" and not table.follow
        assert _visible_ids(table) == ["i1", "i2", "i0"]
        await pilot.press("o")
        assert _visible_ids(table) == ["i2", "i0", "i1"]
        await pilot.press("o")
        assert _visible_ids(table) == ["i0", "i1", "i2"]


async def test_jump_to_finds_an_id_even_outside_the_filter() -> None:
    app = TableApp(_model(50))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        await pilot.press("4")  # failed rows only: item-00007 is not one
        assert table.jump_to("item-00007")
        assert table.status_filter == "all"
        assert table.cursor_row is not None and table.cursor_row.id == "item-00007"
        assert table.jump_to("0004") and table.cursor_row.id == "item-00040"
        assert not table.jump_to("nope")


async def test_the_same_model_on_two_servers_reads_apart_in_a_narrow_model_column() -> None:
    """A run's label for a model goes at its end: cut there, two servers would read the same."""
    twins = ("llamacpp:smollm2 [127.0.0.1:8080]", "llamacpp:smollm2 [127.0.0.1:8081]")
    model = RunModel(clock=lambda: 0.0)
    model.apply_all([run_started(*twins), started("a", twins[0]), started("a", twins[1])])
    app = TableApp(model)
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        table = app.query_one(ItemTable)
        lines = [table.render_line(y).text for y in (1, 2)]
        assert all(twin not in line for twin, line in zip(twins, lines, strict=True))  # cut
        assert "8080]" in lines[0] and "8081]" in lines[1], lines


async def test_a_slow_sort_is_taken_again_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sort that takes a second (a million rows on a slow machine) is taken again only
    once twenty seconds passed, not every two: the table does not freeze half the time."""
    clock = [1_000.0]
    monkeypatch.setattr("tui.widgets.item_table.time", SimpleNamespace(monotonic=lambda: clock[0]))
    app = TableApp(_model(50))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ItemTable)
        store = table._store
        sorts: list[float] = []
        original = store.sorted_view

        def slow_sort(*args):  # type: ignore[no-untyped-def]
            sorts.append(clock[0])
            clock[0] += 1.0
            return original(*args)

        store.sorted_view = slow_sort  # type: ignore[method-assign]
        await pilot.press("o")
        assert len(sorts) == 1
        for step in range(1, 19):
            clock[0] += 1.0
            app.feed([started(f"new-{step}")])
        assert len(sorts) == 1, sorts
        clock[0] += 2.0
        app.feed([started("new-last")])
        assert len(sorts) == 2
