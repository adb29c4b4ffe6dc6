"""The failures screen: groups by error kind, selection, and the retries it asks the app for."""

from __future__ import annotations

from typing import Any

import pytest
from textual.message import Message
from textual.widgets import Static

from engine import ErrorInfo, ItemResult
from tests.tui._factories import MODEL, OTHER_MODEL
from tests.tui._host import SNAPSHOT_SIZE, HostApp, assert_bindings_have_ids, posted
from tui.screens.failures import FailuresScreen
from tui.widgets.failure_list import FailureList

pytestmark = pytest.mark.anyio

KINDS = (
    ("rate_limited", "429 Too Many Requests: retry budget spent"),
    ("timeout", "no answer in 60 s"),
    ("invalid_output", "the output is not valid JSON:\n  expected '}' at line 1, column 40"),
    ("budget", "the run's cost cap ($0.50) is reached"),
)


def result(n: int, kind: str, message: str = "it went wrong", *, status: str = "") -> ItemResult:
    status = status or ("skipped" if kind == "budget" else "failed")
    return ItemResult(
        id=f"ticket-{n:04d}",
        model=MODEL if n % 2 else OTHER_MODEL,
        status=status,  # type: ignore[arg-type]
        line=n + 1,
        fields={"text": f"ticket {n}"},
        attempts=0 if status == "skipped" else 3,
        error=ErrorInfo(kind, message),  # type: ignore[arg-type]
    )


def mixed(count: int) -> list[ItemResult]:
    """Results whose kinds come round unevenly, so the groups have different sizes."""
    return [result(n, *KINDS[(n % 7) % len(KINDS)]) for n in range(count)]


def _list(app: HostApp) -> FailureList:
    return app.screen.query_one(FailureList)


async def test_groups_come_largest_first_with_their_counts() -> None:
    app = HostApp(FailuresScreen(mixed(40)))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        failures = _list(app)
        assert [(g.kind, len(g.members)) for g in failures.groups] == [
            ("rate_limited", 12),
            ("invalid_output", 11),
            ("timeout", 11),
            ("budget", 6),
        ]
        assert failures.cursor_result is None  # on the first header
        await pilot.press("down")
        assert failures.cursor_result == mixed(40)[0]


async def test_ok_results_are_left_out_and_an_empty_screen_says_so() -> None:
    ok = ItemResult(id="fine", model=MODEL, status="ok", line=1, fields={})
    app = HostApp(FailuresScreen([ok]))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _list(app).groups == []
        summary = app.screen.query_one("#failures-summary", Static)
        assert str(summary.content) == "Nothing failed and nothing was skipped."
        await pilot.press("space", "a", "enter", "down", "left")  # nothing to act on


async def test_space_and_a_select_and_r_retries_the_selection() -> None:
    results = mixed(40)
    messages: list[Message] = []
    app = HostApp(FailuresScreen(results))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        failures = _list(app)
        await pilot.press("down", "space", "space")  # the first two rate_limited items
        assert failures.selected_keys == (results[0].key, results[4].key)
        await pilot.press("space")  # ...and a third, then unselect it again
        await pilot.press("up", "space")
        assert len(failures.selected) == 2
        await pilot.press("end", "a")  # the whole budget group
        budget = failures.groups[-1]
        assert budget.selected == len(budget.members) == 6
        await pilot.press("a")  # all selected: a unselects the group
        assert budget.selected == 0
        await pilot.press("a", "r")
        await pilot.pause()
        assert not isinstance(app.screen, FailuresScreen)
    [request] = posted(messages, FailuresScreen.RetryRequested)
    budget_keys = [results[index].key for index in budget.members]
    assert request.keys == tuple(
        sorted([results[0].key, results[4].key, *budget_keys], key=lambda k: k[1])
    )


async def test_r_with_nothing_selected_warns_and_asks_for_nothing() -> None:
    messages: list[Message] = []
    app = HostApp(FailuresScreen(mixed(10)))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, FailuresScreen)
        assert [severity for severity, _ in app.notices] == ["warning"]
    assert not posted(messages, FailuresScreen.RetryRequested)


async def test_shift_r_retries_every_failed_item_but_not_the_skipped_ones() -> None:
    results = mixed(40)
    messages: list[Message] = []
    app = HostApp(FailuresScreen(results))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("R")
        await pilot.pause()
    [request] = posted(messages, FailuresScreen.RetryRequested)
    assert request.keys == tuple(r.key for r in results if r.status == "failed")
    assert len(request.keys) == 34


async def test_enter_on_an_item_asks_to_inspect_it_and_on_a_header_folds_the_group() -> None:
    results = mixed(40)
    messages: list[Message] = []
    app = HostApp(FailuresScreen(results))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        failures = _list(app)
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, FailuresScreen)  # the app pushes the inspector
        [request] = posted(messages, FailuresScreen.InspectRequested)
        assert request.result == results[4]
        await pilot.press("left")  # fold the group: the cursor goes to its header
        assert failures.cursor == 0 and failures.groups[0].folded
        await pilot.press("down")
        assert failures.cursor_group is failures.groups[1]
        await pilot.press("up", "enter")  # unfold
        assert not failures.groups[0].folded
        await pilot.press("down")
        assert failures.cursor_result == results[0]


async def test_the_mouse_selects_with_the_mark_folds_with_a_header_and_opens_on_double_click() -> (
    None
):
    results = mixed(40)
    messages: list[Message] = []
    app = HostApp(FailuresScreen(results))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        failures = _list(app)
        await pilot.pause()
        # The list has a one-cell border: line 1 of its content is at y=2.
        await pilot.click(FailureList, offset=(4, 2))  # the mark of the first item
        assert failures.selected_keys == (results[0].key,)
        await pilot.click(FailureList, offset=(30, 3))  # elsewhere on a row: cursor only
        assert failures.cursor == 2 and len(failures.selected) == 1
        await pilot.double_click(FailureList, offset=(30, 3))
        await pilot.pause()
        [request] = posted(messages, FailuresScreen.InspectRequested)
        assert request.result == results[4]
        await pilot.click(FailureList, offset=(10, 1))  # the first header
        assert failures.groups[0].folded


async def test_a_hundred_thousand_failures_are_all_reachable() -> None:
    results = [result(n, *KINDS[n % 2]) for n in range(100_000)]
    app = HostApp(FailuresScreen(results))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        failures = _list(app)
        await pilot.press("end")
        assert failures.cursor_result == results[-1]
        await pilot.press("a", "pageup")
        assert len(failures.selected) == 50_000
        assert failures.border_subtitle == "timeout · 50,000 selected"


def test_snapshot_with_a_selection(snap_compare: Any) -> None:
    app = HostApp(FailuresScreen(mixed(40)))
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, press=["down", "space", "space", "down"])


def test_snapshot_with_a_group_folded(snap_compare: Any) -> None:
    app = HostApp(FailuresScreen(mixed(40)))
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, press=["down", "left", "down", "a"])


def test_every_binding_has_an_id() -> None:
    assert_bindings_have_ids(FailuresScreen, FailureList)
