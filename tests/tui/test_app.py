"""The app: themes, settings, help, the command palette, and the run screen's refresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding

from engine._events import CapReached
from tests.tui._factories import FakeClock, started
from tests.tui._flows import Notices, finished, start, until
from tests.tui._scenes import busy_run
from themes import BATCHDECK_LIGHT, DEFAULT_THEME, THEMES
from tui.app import BatchdeckApp, make_app
from tui.model import EventBuffer, RunModel
from tui.screens.help import HelpScreen
from tui.screens.run import RunScreen
from tui.settings import Settings, load_settings, save_settings, settings_path
from tui.widgets.flash import Flash
from tui.widgets.item_table import ItemTable

pytestmark = pytest.mark.anyio


def test_every_binding_batchdeck_declares_has_an_id() -> None:
    declared = [
        binding
        for cls in (BatchdeckApp, RunScreen, HelpScreen, ItemTable)
        for binding in cls.__dict__.get("BINDINGS", [])
    ]
    assert declared
    for binding in declared:
        assert isinstance(binding, Binding) and binding.id, binding


async def test_the_batchdeck_themes_are_registered_and_the_default_is_used() -> None:
    app = make_app()
    async with app.run_test():
        for theme in THEMES:
            assert theme.name in app.available_themes
        assert "textual-dark" in app.available_themes
        assert app.theme == DEFAULT_THEME


async def test_a_theme_change_is_remembered(batchdeck_home: Path) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        app.theme = BATCHDECK_LIGHT.name
        await pilot.pause()
    assert load_settings().settings.theme == BATCHDECK_LIGHT.name
    again = make_app()
    async with again.run_test():
        assert again.theme == BATCHDECK_LIGHT.name


async def test_a_corrupt_settings_file_is_reported_not_fatal(notices: Notices) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
    assert any(severity == "warning" and str(path) in text for severity, text in notices.seen)


async def test_an_unknown_saved_theme_falls_back_with_a_warning(notices: Notices) -> None:
    save_settings(Settings(theme="gone-theme"))
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
    assert any("gone-theme" in text for _, text in notices.seen)


async def test_question_mark_opens_help_listing_the_keys_and_escape_closes_it() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys")
        rows = [table.get_row_at(i) for i in range(table.row_count)]  # type: ignore[attr-defined]
        described = {row[1] for row in rows}
        assert {"Help", "Quit", "Filter", "Follow", "Open"} <= described
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


async def test_the_command_palette_offers_every_binding_and_the_theme_switcher() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Theme", "Quit", "Help", "Filter", "Follow", "Open"} <= titles


async def test_a_palette_command_runs_its_binding() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        await commands["Filter"].callback()  # type: ignore[misc]
        assert app.screen.query_one(ItemTable).status_filter == "active"


async def test_the_run_screen_drains_events_on_its_timer_and_reports_notices(
    notices: Notices,
) -> None:
    clock = FakeClock()
    model = busy_run(clock)
    events = EventBuffer()
    app = make_app(model=model, events=events)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one(ItemTable)
        before = len(model.store)
        events(started("late-arrival"))
        events(CapReached(cap="max_cost", message="Cost cap of $0.50 reached"))
        await pilot.pause(0.2)
        assert len(events) == 0
        assert len(model.store) == before + 1
        assert table.cursor_row is not None and table.cursor_row.id == "late-arrival"
    assert ("warning", "Cost cap of $0.50 reached") in notices.seen


async def test_an_idle_app_starts_with_an_empty_run() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)):
        assert isinstance(app.screen, RunScreen)
        assert isinstance(app.model, RunModel)
        assert app.model.state == "idle"


async def test_the_palette_lists_each_command_once_with_its_key_not_its_name_again() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        commands = list(app.get_system_commands(app.screen))
        titles = [command.title for command in commands]
        assert len(titles) == len(set(titles)), titles
        export = next(command for command in commands if command.title == "Export")
        assert "Export" not in export.help and "x" in export.help, export.help


async def test_repeated_plus_updates_one_note_with_the_latest_count() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 36)) as pilot:
        await start(app, pilot, workers="2", sim_latency_ms="3000")
        app.NOTIFICATION_TIMEOUT = 60  # a loaded machine may take seconds over ten presses
        for _ in range(10):
            await pilot.press("plus")
        await pilot.pause()
        flash = app.screen.query_one(Flash)
        assert flash.text == "Workers: 12" and not app.screen.query("Toast")
        flash_at = flash.region
        assert flash_at.height > 0 and flash_at.right == app.screen.region.right
        app.NOTIFICATION_TIMEOUT = 0.5
        await pilot.press("plus")  # shows "Workers: 13" for half a second
        await until(pilot, lambda: not flash.text)  # gone once the presses stop
        await pilot.press("s")
        await until(pilot, lambda: finished(app))


async def test_quitting_says_how_to_resume_and_export_the_run() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 36)) as pilot:
        await start(app, pilot, max_items="5", sim_latency_ms="0")
        await until(pilot, lambda: finished(app))
        run_id = app.session.model.run_id
        steps = app.next_steps()
        assert steps is not None
        assert f"batchdeck resume {run_id}" in steps and f"batchdeck export {run_id}" in steps


async def test_find_jumps_to_an_id_and_says_when_none_matches(notices: Notices) -> None:
    model = busy_run(FakeClock())
    app = make_app(model=model)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(ItemTable)
        await pilot.press("slash")
        await pilot.press(*"0042", "enter")
        await pilot.pause()
        assert table.cursor_row is not None and table.cursor_row.id == "ticket-0042"
        assert not table.follow and table.has_focus
        await pilot.press("slash", *"nothing-like-it", "enter")
        await pilot.pause()
    assert ("warning", "No item id contains 'nothing-like-it'.") in notices.seen
