"""Providers pointed at servers other than their own: the base URL variables the SDKs read,
keys a local server does not need, the output cap's name, the default timeout, and an
Anthropic server that ignores ``tool_choice``."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import ConfigError
from engine.keys import resolve_key, store_key
from engine.providers import CallRequest, base_url_for, default_timeout, make_provider
from tests._mock_provider import json_response, mock_provider
from tests.engine.scripted import ScriptedProvider, execute, items, make_run
from tests.providers.test_anthropic import MESSAGE
from tests.providers.test_openai import COMPLETION

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("base_url", "field"),
    [
        (None, "max_completion_tokens"),
        ("https://api.openai.com/v1/", "max_completion_tokens"),
        ("http://127.0.0.1:8080/v1", "max_tokens"),
    ],
)
async def test_openai_sends_max_tokens_to_any_other_server(base_url: str | None, field: str):
    async with mock_provider("openai", json_response(200, COMPLETION), base_url=base_url) as mock:
        await mock.provider.call(CallRequest(model="m", prompt="hi", max_tokens=77))
    (other,) = {"max_tokens", "max_completion_tokens"} - {field}
    assert mock.body[field] == 77 and other not in mock.body


@pytest.mark.parametrize(
    ("provider", "variable", "url", "sent_to"),
    [
        ("openai", "OPENAI_BASE_URL", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/chat/completions"),
        ("anthropic", "ANTHROPIC_BASE_URL", "http://127.0.0.1:9", "http://127.0.0.1:9/v1/messages"),
        ("openai-compatible", "OPENAI_BASE_URL", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/chat/completions"),
    ],
)  # fmt: skip
async def test_the_sdks_base_url_variables_are_honoured(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str, url: str, sent_to: str
) -> None:
    monkeypatch.setenv(variable, url)
    answer = json_response(200, MESSAGE if provider == "anthropic" else COMPLETION)
    async with mock_provider(provider, answer) as mock:
        await mock.provider.call(CallRequest(model="m", prompt="hi"))
    assert str(mock.request.url) == sent_to
    assert base_url_for(provider, "https://given.example/v1") == "https://given.example/v1"


async def test_a_local_base_url_needs_no_key_on_the_anthropic_wire() -> None:
    with pytest.raises(ConfigError, match="no API key for anthropic"):
        make_provider("anthropic")
    async with mock_provider(
        "anthropic", json_response(200, MESSAGE), key=None, base_url="http://127.0.0.1:8080"
    ) as mock:
        result = await mock.provider.call(CallRequest(model="local", prompt="hi"))
    assert result.text == "Hi! My name is Claude." and "x-api-key" not in mock.request.headers
    with pytest.raises(ConfigError, match="no API key for anthropic"):
        make_provider("anthropic", base_url="https://proxy.example.com")


async def test_openai_compatible_falls_back_to_OPENAI_API_KEY(
    monkeypatch: pytest.MonkeyPatch, batchdeck_home: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789abcdefghij")
    found = resolve_key("openai-compatible")
    assert found is not None and found.source == "env OPENAI_API_KEY"
    store_key("openai-compatible", "sk-own-0123456789abcdefghijkl")  # its own key comes first
    found = resolve_key("openai-compatible")
    assert found is not None and found.secret.reveal() == "sk-own-0123456789abcdefghijkl"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-env-0123456789abcdefghijkl")
    found = resolve_key("openai-compatible")
    assert found is not None and found.source == "env OPENAI_COMPATIBLE_API_KEY"


async def test_an_anthropic_server_that_ignores_tool_choice_fails_once_keeping_the_text():
    async with mock_provider("anthropic", json_response(200, MESSAGE)) as mock:
        request = CallRequest(model="local", prompt="label it", schema=SCHEMA)
        with pytest.raises(Exception) as caught:
            await mock.provider.call(request)
    error = caught.value
    assert getattr(error, "kind", None) == "invalid_output"
    assert "did not call the tool" in str(error) and "not JSON" not in str(error)
    assert error.output == "Hi! My name is Claude."  # type: ignore[attr-defined]
    assert error.retryable is False  # type: ignore[attr-defined]
    assert error.usage is not None and error.usage.output_tokens == 503  # type: ignore[attr-defined]


def test_local_servers_default_to_a_longer_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_timeout("openai") == default_timeout("groq") == 60
    for local in ("ollama", "llamacpp", "vllm", "lmstudio"):
        assert default_timeout(local) == 600
    assert default_timeout("openai-compatible", "http://127.0.0.1:8080/v1") == 600
    assert default_timeout("openai-compatible", "https://llm.example.com/v1") == 60
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8080/v1")
    assert default_timeout("openai") == 600


async def test_a_run_calls_each_model_with_its_own_timeout(tmp_path: Path) -> None:
    models = ("llamacpp:smollm2", "openai:gpt-4o-mini")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    provider = ScriptedProvider()
    await execute(make_run(tmp_path / "a", items(2), models=models), provider)
    assert {(r.model, r.timeout_s) for r in provider.requests} == {
        ("smollm2", 600.0),
        ("gpt-4o-mini", 60.0),
    }
    given = ScriptedProvider()
    await execute(make_run(tmp_path / "b", items(1), models=models, timeout=5), given)
    assert {r.timeout_s for r in given.requests} == {5.0}


@pytest.mark.parametrize(
    ("base_url", "sent"),
    [("https://llm.example.com/v1", True), ("http://10.0.0.5:8000/v1", False)],
)
async def test_the_borrowed_OPENAI_API_KEY_goes_only_where_a_key_may(
    monkeypatch: pytest.MonkeyPatch, base_url: str, sent: bool
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789abcdefghij")
    async with mock_provider(
        "openai-compatible", json_response(200, COMPLETION), key=None, base_url=base_url
    ) as mock:
        await mock.provider.call(CallRequest(model="m", prompt="hi"))
    assert ("authorization" in mock.request.headers) is sent
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-own-0123456789abcdefghijkl")
    with pytest.raises(ConfigError, match="refusing to send an API key in clear"):
        make_provider("openai-compatible", base_url="http://10.0.0.5:8000/v1")
