"""Setup tells the truth about the form: what no longer applies goes, a file with nothing
readable is a problem, Start is refused while any field has one, the format can be chosen,
and at 80x24 every pane is reachable and every focused widget shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea

from tests.tui._flows import TICKETS, set_up, settle
from tui._format import squeezed
from tui.app import make_app
from tui.screens.help import HelpScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.widgets.model_picker import GUTTER, ModelPicker

pytestmark = pytest.mark.anyio


def _text(screen: SetupScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def _reset_path(app: object, pilot: object, screen: SetupScreen, path: Path) -> None:
    screen.query_one("#path", Input).value = str(path)
    screen.query_one("#path", Input).focus()
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(app, pilot)  # type: ignore[arg-type]


async def test_a_bad_path_clears_the_last_files_preview_and_estimate(tmp_path: Path) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await set_up(app, pilot)
        assert "60 items" in _text(screen, "#preview-summary")
        assert "60 items" in _text(screen, "#estimate")
        await _reset_path(app, pilot, screen, tmp_path / "gone.jsonl")
        assert "not found" in _text(screen, "#path-problem")
        assert "60 items" not in _text(screen, "#preview-summary")
        assert screen.query_one("#preview-items", DataTable).row_count == 0
        assert _text(screen, "#rendered") == "" or "default" in _text(screen, "#rendered")
        assert "60 items" not in _text(screen, "#estimate")
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, SetupScreen) and app.session.run is None


async def test_a_binary_file_is_flagged_keeps_the_template_and_cannot_start(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await set_up(app, pilot)
        prompt = screen.query_one("#prompt", TextArea)
        prompt.load_text("Classify: {subject}")
        await settle(app, pilot)
        await _reset_path(app, pilot, screen, binary)
        assert "can be read" in _text(screen, "#path-problem")
        assert prompt.text == "Classify: {subject}"  # not filled with {id}
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, SetupScreen) and app.session.run is None


async def test_a_directory_says_it_is_one(tmp_path: Path) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await set_up(app, pilot, path=tmp_path)
        problem = _text(screen, "#path-problem")
        assert "directory" in problem and "format" not in problem


async def test_an_unknown_placeholder_blocks_start(tmp_path: Path) -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await set_up(app, pilot)
        screen.query_one("#prompt", TextArea).load_text("Classify: {nope}")
        await settle(app, pilot)
        assert "unknown placeholder" in _text(screen, "#prompt-problem")
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, SetupScreen) and app.session.run is None


async def test_the_format_chooser_reads_a_file_whatever_its_name(tmp_path: Path) -> None:
    renamed = tmp_path / "tickets.data"
    renamed.write_bytes(TICKETS.read_bytes())
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await set_up(app, pilot, path=renamed)
        assert "cannot tell the format" in _text(screen, "#path-problem")
        screen.query_one("#format", Select).value = "jsonl"
        await settle(app, pilot)
        assert _text(screen, "#path-problem") == ""
        assert "60 items" in _text(screen, "#preview-summary")
        config = screen.config()
        assert config is not None and config.format == "jsonl"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen)


async def test_at_80x24_the_middle_pane_scrolls_to_the_rendered_prompt() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await set_up(app, pilot)
        pane = screen.query_one("#setup-prompt")
        rendered = screen.query_one("#rendered")
        assert pane.max_scroll_y > 0
        pane.scroll_to_widget(rendered, animate=False)
        await pilot.pause()
        assert (
            pane.region.contains_region(rendered.region)
            or rendered.region.intersection(pane.region).height > 0
        )


@pytest.mark.timeout(300)  # a screenshot per focus stop: minutes on a loaded machine
async def test_every_focus_stop_shows_focus() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        await set_up(app, pilot)
        screen = app.screen
        stops: list[Widget] = list(screen.focus_chain)
        assert len(stops) > 5
        for widget in stops:
            widget.focus()
            await pilot.pause()
            focused = _look(widget)
            screen.set_focus(None)
            await pilot.pause()
            assert _look(widget) != focused, f"{widget!r} looks the same focused"


async def test_tab_goes_from_field_to_field_never_onto_a_pane() -> None:
    """A pane that scrolls is no Tab stop of its own: focus moving to a field scrolls it, so
    every Tab lands on something that takes keys, and the rendered prompt at the end of the
    middle pane is a stop to read it by."""
    app = make_app(first="setup")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await set_up(app, pilot)
        screen.query_one("#path", Input).focus()
        visited: list[Widget] = []
        for _ in range(len(screen.focus_chain)):
            await pilot.press("tab")
            assert app.focused is not None
            visited.append(app.focused)
        containers = [w for w in visited if w.has_class("pane") or w.query("Input, TextArea")]
        assert not containers, containers
        rendered = screen.query_one("#rendered")
        assert rendered in visited
        rendered.focus()
        await pilot.pause()
        pane = screen.query_one("#setup-prompt")
        assert rendered.region.intersection(pane.region).height >= 3


async def test_at_80_columns_each_model_is_one_line_and_models_read_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    app = make_app(first="setup")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await set_up(app, pilot)
        picker = screen.query_one("#models", ModelPicker)
        specs = picker.specs()
        assert len(specs) > picker.size.height > 5 and specs[1].startswith("anthropic:")
        assert max(map(len, specs)) > picker.label_width  # else nothing needs cutting
        lines = [picker.render_line(y).text for y in range(picker.size.height)]
        labels = [line[GUTTER:].rstrip() for line in lines]
        for label, spec in zip(labels, specs, strict=False):  # one line per model
            assert label == squeezed(spec, picker.label_width), (label, spec)
            head, _, tail = label.partition("…")
            assert spec.startswith(head) and spec.endswith(tail)
        assert len(set(labels)) == len(labels), labels


def _look(widget: Widget) -> tuple[object, ...]:
    """What focus may change in how a widget and its parts are drawn: borders, backgrounds,
    text styles (a focused row cursor's colours among them)."""
    parts = [widget, *widget.query("*")]
    return tuple(
        (part.styles.background, part.styles.border, part.styles.text_style, part.rich_style)
        for part in parts
    ) + (tuple(strip.text for strip in widget.render_lines(widget.region.reset_offset)),)


async def test_help_in_setup_lists_its_own_keys_by_readable_place() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=(120, 40)) as pilot:
        await set_up(app, pilot)
        app.screen.query_one("#prompt", TextArea).focus()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys", DataTable)
        rows = [tuple(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]
        keys = {row[0] for row in rows}
        assert {"^s", "^r", "esc"} <= keys or {"ctrl+s", "ctrl+r", "escape"} <= keys, rows
        places = {row[2] for row in rows}
        assert "Setup screen" in places
        assert not any(place.endswith(("Screen", "Area", "App")) for place in places), places
        assert len(rows) < 15, rows  # the text field's editing keys are not listed
