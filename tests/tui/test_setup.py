"""The setup screen: preview, prompt checks, model picker, caps form, estimate, Start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, SelectionList, Static, TextArea

from engine import DEFAULT_MODEL, PriceTable, estimate
from engine.keys import KeyStatus
from tests.tui._flows import (
    SIZE,
    TICKET_COUNT,
    TICKETS,
    preview_laid_out,
    set_up,
    settle,
    until,
)
from tui.app import BatchdeckApp, make_app
from tui.model import ModelChoice, default_models, estimate_text, model_choices
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.settings import Settings, load_settings, save_settings
from tui.widgets.input_tree import InputTree

pytestmark = pytest.mark.anyio


def _text(screen: SetupScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def _key(provider: str, present: bool) -> KeyStatus:
    return KeyStatus(
        provider,
        present,
        True,
        f"env {provider.upper()}_API_KEY" if present else None,
        "sk-…abcd" if present else None,
    )


def test_without_a_key_only_simulate_is_listed_and_is_the_default() -> None:
    choices = model_choices(PriceTable.load(), [_key("openai", False), _key("gemini", False)])
    assert [choice.spec for choice in choices] == [DEFAULT_MODEL]
    assert choices[0].has_key and "genai-prices" in choices[0].source
    assert default_models((), choices) == (DEFAULT_MODEL,)


def test_a_provider_with_a_key_lists_the_price_data_s_models_current_first() -> None:
    prices = PriceTable.load()
    choices = model_choices(prices, [_key("openai", True), _key("anthropic", False)])
    specs = [choice.spec for choice in choices]
    assert specs == [DEFAULT_MODEL, *prices.models_of("openai")] and len(specs) > 20
    mini = next(choice for choice in choices if choice.spec == "openai:gpt-4o-mini")
    price = prices.lookup("openai:gpt-4o-mini")
    assert price is not None and mini.price == price.describe()
    assert mini.key == "key: env OPENAI_API_KEY sk-…abcd" and mini.source.endswith(prices.as_of)
    cheapest = min((c.per_million, c.spec) for c in choices[1:] if c.per_million is not None)
    assert default_models((), choices) == (cheapest[1],)
    assert default_models(("openai:gpt-4o", "gone:model"), choices) == ("openai:gpt-4o",)


def test_model_choice_is_a_plain_record() -> None:
    assert ModelChoice("a:b", "$1 / $2 per Mtok", "no key", False).per_million is None


async def _setup_app() -> BatchdeckApp:
    return make_app(first="setup")


async def test_preview_shows_count_fields_and_invalid_lines(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text('{"id": "a", "text": "one"}\nnot json\n{"id": "b", "text": "two"}\n')
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, path=source)
        summary = _text(screen, "#preview-summary")
        assert "2 items" in summary and "1 invalid" in summary and "fields: id, text" in summary
        assert _text(screen, "#invalid").startswith("line 2:")
        assert screen.query_one("#prompt", TextArea).text == "{text}"
        assert _text(screen, "#rendered") == "one"


async def test_a_missing_file_is_one_line_by_the_path() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, path=Path("no/such/file.jsonl"))
        problem = _text(screen, "#path-problem")
        assert "no/such/file.jsonl" in problem and "\n" not in problem


async def test_unknown_placeholders_are_flagged_as_you_type() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot)
        screen.query_one("#prompt", TextArea).load_text("Label {context} from {nope}")
        await settle(app, pilot)
        assert _text(screen, "#prompt-problem").startswith("unknown placeholder: {nope}")
        screen.query_one("#prompt", TextArea).load_text("Tier {customer_tier}: {context")
        await settle(app, pilot)
        assert "never closed" in _text(screen, "#prompt-problem")
        screen.query_one("#prompt", TextArea).load_text("Tier {customer_tier}")
        await settle(app, pilot)
        assert _text(screen, "#prompt-problem") == ""
        assert _text(screen, "#rendered") == "Tier pro"


async def test_bad_values_are_marked_by_their_field_and_block_start() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, workers="abc")
        assert _text(screen, "#caps-problem") == "Workers: a whole number, please"
        assert screen.query_one("#cap-workers", Input).has_class("-invalid")
        screen.query_one("#cap-workers", Input).value = "0"
        await settle(app, pilot)
        assert _text(screen, "#caps-problem").startswith("workers:")
        assert screen.query_one("#cap-workers", Input).has_class("-invalid")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen and not app.session.running


async def test_a_value_the_engine_refuses_marks_its_own_field() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_failure_rate="2")
        assert _text(screen, "#caps-problem").startswith("sim_failure_rate:")
        assert screen.query_one("#cap-sim_failure_rate", Input).has_class("-invalid")
        assert not screen.query_one("#cap-sim_latency_ms", Input).has_class("-invalid")
        screen.query_one("#cap-sim_failure_rate", Input).value = "0.5"
        await settle(app, pilot)
        assert _text(screen, "#caps-problem") == ""
        assert not screen.query_one("#cap-sim_failure_rate", Input).has_class("-invalid")


async def test_the_estimate_follows_the_settings() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, workers="3", sim_latency_ms="100")
        estimate = _text(screen, "#estimate")
        assert f"{TICKET_COUNT} items · {TICKET_COUNT} calls" in estimate
        assert "at 3 workers" in estimate and "100ms a call" in estimate
        screen.query_one("#cap-max_cost", Input).value = "0.5"
        await settle(app, pilot)
        assert "(cap $0.500)" in _text(screen, "#estimate")


async def test_start_remembers_the_file_models_and_caps() -> None:
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0", workers="3", max_cost="0.25")
        assert screen.query_one("#models", SelectionList).selected == [DEFAULT_MODEL]
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen)
    saved = load_settings().settings
    assert saved.recent_files == (str(TICKETS),)
    assert saved.last_input_dir == str(TICKETS.parent)
    assert saved.models == (DEFAULT_MODEL,)
    assert (saved.caps["workers"], saved.caps["max_cost"]) == (3, 0.25)


def test_snapshot_of_the_setup_screen(
    snap_compare: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(TICKETS, inputs / "tickets.jsonl")
    (inputs / "notes.md").write_text("# notes\n")
    (inputs / "skip.bin").write_bytes(b"\0")
    monkeypatch.chdir(inputs)

    async def fill(pilot: object) -> None:
        app = pilot.app  # type: ignore[attr-defined]
        screen = await set_up(app, pilot, path=Path("tickets.jsonl"), workers="4")  # type: ignore[arg-type]
        tree = screen.query_one(InputTree)
        await until(pilot, lambda: len(tree.root.children) == 2)  # type: ignore[arg-type]
        await settle(app, pilot)  # type: ignore[arg-type]
        await until(pilot, lambda: preview_laid_out(screen))  # type: ignore[arg-type]
        await pilot.pause()  # type: ignore[attr-defined]  # the layout it asked for

    assert snap_compare(  # type: ignore[operator]
        make_app(first="setup"), terminal_size=SIZE, run_before=fill
    )


async def test_the_preview_table_is_drawn_at_its_cells_widths_even_if_painted_early() -> None:
    """A paint between filling the table and its idle measuring must not leave it drawn at
    its labels' widths (the snapshot flaked so under load)."""
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot)
        assert screen.preview is not None
        table = screen.query_one("#preview-items", DataTable)
        screen._show_preview(screen.preview)
        early = table.render_line(1).text  # painted before the table is idle
        await until(pilot, lambda: preview_laid_out(screen))
        first = screen.preview.items[0]
        assert first.id in early and first.id in table.render_line(1).text


async def test_the_most_recent_file_is_previewed_and_the_others_are_offered() -> None:
    older = TICKETS.parent / "reviews.csv"
    save_settings(Settings(recent_files=(str(TICKETS), str(older))))
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        assert screen.query_one("#path", Input).value == str(TICKETS)
        assert f"{TICKET_COUNT} items" in _text(screen, "#preview-summary")
        recent = screen.query_one("#recent", OptionList)
        assert recent.option_count == 2
        recent.focus()
        recent.highlighted = 1
        await pilot.press("enter")
        await settle(app, pilot)
        assert screen.query_one("#path", Input).value == str(older)
        assert _text(screen, "#preview-summary").startswith("csv · 50 items")


async def test_b_sets_a_model_batch_with_both_prices_shown_and_the_estimate_following() -> None:
    price = PriceTable.load().lookup(DEFAULT_MODEL)
    assert price is not None
    app = await _setup_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0")
        online = _text(screen, "#estimate")
        picker = screen.query_one("#models", SelectionList)
        picker.focus()
        picker.highlighted = 0
        await pilot.press("b")
        await settle(app, pilot)
        detail = _text(screen, "#model-detail")
        assert f"{DEFAULT_MODEL}: goes batch" in detail
        assert f"  online {price.describe()}\n▸ batch  {price.batch().describe()}\n" in detail
        config = screen.config()
        assert config is not None and config.models == (f"{DEFAULT_MODEL}@batch",)
        assert config.batch_models == {f"{DEFAULT_MODEL}@batch"}
        shown = _text(screen, "#estimate")
        assert shown == estimate_text(estimate(config), config) and shown != online
        assert "batch jobs: results within 24 h" in shown
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    assert load_settings().settings.models == (f"{DEFAULT_MODEL}@batch",)

    again = await _setup_app()  # the choice is remembered, as the model and its mode
    async with again.run_test(size=SIZE) as pilot:
        screen = await set_up(again, pilot, sim_latency_ms="0")
        picker = screen.query_one("#models", SelectionList)
        assert picker.selected == [DEFAULT_MODEL]
        assert str(picker.get_option_at_index(0).prompt).endswith("  batch")
        picker.focus()
        picker.highlighted = 0
        await pilot.press("b")  # and back online
        config = screen.config()
        assert config is not None and config.models == (f"{DEFAULT_MODEL}@online",)
        assert not config.batch_models
