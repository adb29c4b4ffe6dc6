"""Setup reaches any provider, local servers included: every preset, a base URL per model,
"List models" against a server (the fake one on 127.0.0.1), and what was added remembered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, Select, SelectionList, Static

from engine.providers import PRESETS
from tests.fakeserver.fixtures import serve_in_process
from tests.tui._flows import SIZE, finished, set_up, settle, until
from tui.app import BatchdeckApp, make_app
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.settings import Settings, load_settings, save_settings
from tui.widgets.model_adder import ModelAdder

pytestmark = pytest.mark.anyio

DEAD = "http://127.0.0.1:9/v1"


def _text(screen: SetupScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


@asynccontextmanager
async def _adder(**caps: str) -> AsyncIterator[tuple[BatchdeckApp, Pilot[None], SetupScreen]]:
    """The app on Setup, its form filled (``set_up``), the model adder unfolded."""
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, **caps)
        screen.query_one(ModelAdder).open()
        await pilot.pause()
        yield app, pilot, screen


async def _press(app, pilot, screen: SetupScreen, button: str) -> None:
    screen.query_one(button, Button).press()
    await settle(app, pilot)


async def test_every_preset_is_offered() -> None:
    async with _adder() as (app, pilot, screen):
        select = screen.query_one("#add-provider", Select)
        offered = [value for _, value in select._options]
        assert offered == list(PRESETS)
        for name in ("ollama", "llamacpp", "vllm", "lmstudio", "openrouter", "groq"):
            assert name in offered
        assert {"together", "deepseek", "openai-compatible"} <= set(offered)
        assert select.value == "ollama"
        url = screen.query_one("#add-url", Input)
        assert url.placeholder == "http://localhost:11434/v1"  # what a blank URL means
        select.value = "openai-compatible"
        await pilot.pause()
        assert url.placeholder == "base URL (required)"


async def test_list_models_asks_the_server_and_a_pick_runs_there() -> None:
    async with serve_in_process(api_key=None, listed_models=("smollm2", "qwen")) as fake:
        async with _adder(sim_latency_ms="0", max_items="3") as (app, pilot, screen):
            screen.query_one("#add-provider", Select).value = "llamacpp"
            screen.query_one("#add-url", Input).value = fake.openai_base_url
            await _press(app, pilot, screen, "#add-probe")
            found = screen.query_one("#add-found", OptionList)
            assert [str(found.get_option_at_index(i).prompt) for i in range(2)] == [
                "qwen",
                "smollm2",
            ]
            assert _text(screen, "#add-status") == "2 models: pick one, then Add"
            found.focus()
            found.highlighted = 1
            await pilot.press("enter")
            assert screen.query_one("#add-model", Input).value == "smollm2"
            await _press(app, pilot, screen, "#add-button")
            picker = screen.query_one("#models", SelectionList)
            assert "llamacpp:smollm2" in picker.selected
            assert f"at {fake.openai_base_url}, no key needed" in _text(screen, "#model-detail")
            picker.deselect("simulate:gpt-4o-mini")
            await settle(app, pilot)
            config = screen.config()
            assert config is not None and config.models == ("llamacpp:smollm2",)
            assert config.base_urls == {"llamacpp:smollm2": fake.openai_base_url}
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            assert isinstance(app.screen, RunScreen)
            await until(pilot, lambda: finished(app))
            assert app.session.model.finished is not None
            assert app.session.model.finished.ok == 3
            assert fake.stats()["requests"] == 3
    saved = load_settings().settings
    assert saved.added_models == {"llamacpp:smollm2": fake.openai_base_url}
    assert saved.models == ("llamacpp:smollm2",)


async def test_a_server_that_does_not_answer_is_one_line() -> None:
    async with _adder() as (app, pilot, screen):
        screen.query_one("#add-provider", Select).value = "llamacpp"
        screen.query_one("#add-url", Input).value = DEAD
        await _press(app, pilot, screen, "#add-probe")
        status = _text(screen, "#add-status")
        assert status.startswith("Could not list models: connection to llamacpp failed")
        assert "\n" not in status and screen.query_one("#add-found", OptionList).option_count == 0


async def test_a_bad_url_or_no_name_adds_nothing() -> None:
    async with _adder() as (app, pilot, screen):
        picker = screen.query_one("#models", SelectionList)
        before = picker.option_count
        await _press(app, pilot, screen, "#add-button")
        assert _text(screen, "#add-status").startswith("Name the model first")
        screen.query_one("#add-model", Input).value = "qwen"
        screen.query_one("#add-url", Input).value = "ftp://box/v1"
        await _press(app, pilot, screen, "#add-button")
        assert "must be http(s)://" in _text(screen, "#add-status")
        screen.query_one("#add-provider", Select).value = "openai-compatible"
        screen.query_one("#add-url", Input).value = ""
        await _press(app, pilot, screen, "#add-button")
        assert "openai-compatible needs a base URL" in _text(screen, "#add-status")
        assert picker.option_count == before


async def test_models_added_before_are_offered_again_with_their_url() -> None:
    save_settings(
        Settings(
            added_models={"ollama:qwen": "http://127.0.0.1:11435/v1", "vllm:mistral": ""},
            models=("ollama:qwen",),
        )
    )
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot)
        picker = screen.query_one("#models", SelectionList)
        values = [picker.get_option_at_index(i).value for i in range(picker.option_count)]
        assert values[:3] == ["simulate:gpt-4o-mini", "ollama:qwen", "vllm:mistral"]
        assert picker.selected == ["ollama:qwen"]
        assert "@127.0.0.1:11435" in str(picker.get_option_at_index(1).prompt)
        config = screen.config()
        assert config is not None
        assert config.base_urls == {"ollama:qwen": "http://127.0.0.1:11435/v1"}


def test_a_remembered_url_never_keeps_a_credential(tmp_path) -> None:
    path = tmp_path / "settings.json"
    url = "http://me:hunter2pass@box:8000/v1?api_key=canary0secret"
    save_settings(Settings(added_models={"vllm:m": url}), path)
    text = path.read_text()
    assert "hunter2pass" not in text and "canary0secret" not in text
    assert load_settings(path).settings.added_models == {"vllm:m": "http://box:8000/v1"}
