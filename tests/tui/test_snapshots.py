"""Snapshots of the run and help screens at 120x36, fed a fixed run with a frozen clock.

Regenerate after a deliberate visual change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the report.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App

from tests.tui._factories import FakeClock
from tests.tui._scenes import busy_run, pipeline_run
from themes import BATCHDECK_LIGHT
from tui.app import make_app
from tui.model import EventBuffer
from tui.settings import Settings, save_settings

SIZE = (120, 36)


def _busy_app() -> App[None]:
    return make_app(model=busy_run(FakeClock()), events=EventBuffer())


def _compare(snap_compare: object, app: App[None], press: Iterable[str] = ()) -> bool:
    return snap_compare(app, terminal_size=SIZE, press=press)  # type: ignore[operator, no-any-return]


def test_run_screen_dark(snap_compare: object) -> None:
    assert _compare(snap_compare, _busy_app())


def test_run_screen_light(snap_compare: object) -> None:
    save_settings(Settings(theme=BATCHDECK_LIGHT.name))
    assert _compare(snap_compare, _busy_app())


def test_run_screen_filtered_to_failures_and_scrolled(snap_compare: object) -> None:
    assert _compare(snap_compare, _busy_app(), press=["f", "f", "f", "home", "down"])


def test_run_screen_before_a_run(snap_compare: object) -> None:
    assert _compare(snap_compare, make_app())


def test_help_screen(snap_compare: object) -> None:
    assert _compare(snap_compare, _busy_app(), press=["question_mark"])


def test_a_pipeline_run_at_80x24(snap_compare: object) -> None:
    """Each row with its item's step progress; the tokens give way at 80 columns."""
    app = make_app(model=pipeline_run(FakeClock()), events=EventBuffer())
    assert snap_compare(app, terminal_size=(80, 24))  # type: ignore[operator]
