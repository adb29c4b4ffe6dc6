"""Model specs, presets and ``make_provider``'s checks."""

from __future__ import annotations

import pytest

from engine._errors import ConfigError
from engine.providers import PRESETS, ModelSpec, make_provider, parse_model_spec, provider_names


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("ollama:llama3.2:3b", ModelSpec("ollama", "llama3.2:3b")),
        (
            "openrouter:anthropic/claude-3.5-haiku",
            ModelSpec("openrouter", "anthropic/claude-3.5-haiku"),
        ),
        (" gemini:gemini-2.0-flash ", ModelSpec("gemini", "gemini-2.0-flash")),
    ],
)
def test_model_specs_split_on_the_first_colon(text: str, spec: ModelSpec) -> None:
    assert parse_model_spec(text) == spec


def test_label_round_trips() -> None:
    assert parse_model_spec("ollama:llama3.2:3b").label == "ollama:llama3.2:3b"


@pytest.mark.parametrize("text", ["gpt-4o-mini", "openai:", ":gpt-4o", "opneai:gpt-4o"])
def test_bad_model_specs_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_model_spec(text)


def test_every_preset_is_a_provider() -> None:
    assert set(PRESETS) <= set(provider_names())


@pytest.mark.anyio
async def test_a_required_key_that_is_missing_fails_before_any_call() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY.*batchdeck keys set openai"):
        make_provider("openai")


@pytest.mark.anyio
async def test_the_key_is_resolved_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-resolved-0123456789")
    provider = make_provider("anthropic")
    await provider.aclose()


@pytest.mark.anyio
async def test_local_presets_need_no_key() -> None:
    provider = make_provider("ollama")
    await provider.aclose()


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ConfigError, match="base URL"):
        make_provider("openai-compatible")


@pytest.mark.parametrize("url", ["localhost:8080/v1", "ftp://host/v1", "http://"])
def test_bad_base_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="base URL"):
        make_provider("openai-compatible", base_url=url)


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        make_provider("bedrock")
