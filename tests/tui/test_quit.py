"""The quit-during-a-run dialog: each key and each button gives its documented answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui._host import SNAPSHOT_SIZE, HostApp, assert_bindings_have_ids
from tui.screens.quit import QuitScreen

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("key", "answer"),
    [("s", "stop"), ("a", "abort"), ("k", "cancel"), ("escape", "cancel")],
)
async def test_each_key_answers(key: str, answer: str) -> None:
    app = HostApp(QuitScreen())
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen)
    assert app.answers == [answer]


@pytest.mark.parametrize("answer", ["stop", "abort", "cancel"])
async def test_each_button_answers(answer: str) -> None:
    app = HostApp(QuitScreen())
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.click(f"#quit-{answer}")
        await pilot.pause()
    assert app.answers == [answer]


async def test_enter_takes_the_safe_default() -> None:
    app = HostApp(QuitScreen())
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == ["stop"]


def test_snapshot(snap_compare: Any) -> None:
    assert snap_compare(HostApp(QuitScreen()), terminal_size=SNAPSHOT_SIZE)


def test_every_binding_has_an_id() -> None:
    assert_bindings_have_ids(QuitScreen)
