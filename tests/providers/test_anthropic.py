"""Anthropic Messages against recorded-shape responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider
from tests.providers._bodies import anthropic_error

KEY = "sk-ant-api03-test0123456789abcdefWXYZ"

MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Hi! My name is Claude."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "output_tokens": 503,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    },
}

REQUEST = CallRequest(model="claude-3-5-haiku-latest", prompt="Hello")

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
    "required": ["label"],
}


@pytest.mark.anyio
async def test_plain_call_sends_messages_with_version_and_key_headers() -> None:
    async with mock_provider("anthropic", json_response(200, MESSAGE), key=KEY) as mock:
        result = await mock.provider.call(REQUEST)
    request = mock.request
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert KEY not in str(request.url)
    assert mock.body == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert result.text == "Hi! My name is Claude."
    assert result.usage == Usage(input_tokens=2095, output_tokens=503, cached_tokens=0)
    assert result.finish_reason == "stop"


@pytest.mark.anyio
async def test_system_sampling_stop_and_params() -> None:
    request = CallRequest(
        model="claude-sonnet-4-5",
        prompt="Summarise",
        system="Be terse.",
        max_tokens=300,
        temperature=0.0,
        stop=("END",),
        params={"top_k": 5, "metadata": {"user_id": "u-1"}},
    )
    async with mock_provider("anthropic", json_response(200, MESSAGE), key=KEY) as mock:
        await mock.provider.call(request)
    assert mock.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Summarise"}],
        "system": "Be terse.",
        "temperature": 0.0,
        "stop_sequences": ["END"],
        "top_k": 5,
        "metadata": {"user_id": "u-1"},
    }


@pytest.mark.anyio
async def test_schema_is_one_forced_tool_and_its_input_is_the_parsed_result() -> None:
    answer = {
        **MESSAGE,
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "ticket",
                "input": {"label": "refund", "score": 0.9},
            }
        ],
        "stop_reason": "tool_use",
    }
    request = CallRequest(
        model="claude-3-5-haiku-latest", prompt="x", schema=SCHEMA, schema_name="ticket"
    )
    async with mock_provider("anthropic", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(request)
    tools = mock.body["tools"]
    assert len(tools) == 1
    assert tools[0]["name"] == "ticket"
    assert tools[0]["input_schema"] == SCHEMA
    assert mock.body["tool_choice"] == {"type": "tool", "name": "ticket"}
    assert result.parsed == {"label": "refund", "score": 0.9}
    assert result.text == '{"label":"refund","score":0.9}'
    assert result.finish_reason == "stop"


@pytest.mark.anyio
async def test_a_key_in_the_tools_input_is_scrubbed_from_the_parsed_result() -> None:
    """The provider's own parse is scrubbed here, once: the engine validates it as it is."""
    tool = {"type": "tool_use", "id": "toolu_1", "name": "result", "input": {"label": KEY}}
    answer = {**MESSAGE, "content": [tool], "stop_reason": "tool_use"}
    request = CallRequest(model="claude-3-5-haiku-latest", prompt="x", schema=SCHEMA)
    async with mock_provider("anthropic", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(request)
    assert result.parsed == {"label": "[redacted]"}
    assert KEY not in result.text


@pytest.mark.anyio
async def test_a_non_object_schema_is_wrapped_and_unwrapped() -> None:
    schema = {
        "type": "array",
        "items": {"$ref": "#/$defs/tag"},
        "$defs": {"tag": {"type": "string"}},
    }
    answer = {
        **MESSAGE,
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "result", "input": {"value": ["a", "b"]}}
        ],
        "stop_reason": "tool_use",
    }
    request = CallRequest(model="claude-3-5-haiku-latest", prompt="x", schema=schema)
    async with mock_provider("anthropic", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(request)
    input_schema = mock.body["tools"][0]["input_schema"]
    assert input_schema["type"] == "object"
    assert input_schema["properties"]["value"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/tag"},
    }
    assert input_schema["$defs"] == {"tag": {"type": "string"}}
    assert result.parsed == ["a", "b"]
    assert result.text == '["a","b"]'


@pytest.mark.anyio
async def test_cache_reads_and_writes_count_as_input_and_apart() -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 20,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 3000,
    }
    async with mock_provider(
        "anthropic", json_response(200, {**MESSAGE, "usage": usage}), key=KEY
    ) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.usage == Usage(
        input_tokens=4050, output_tokens=20, cached_tokens=3000, cache_write_tokens=1000
    )


LONG = "Label each support ticket as billing, bug or other. " * 100
"""A system prompt long enough (over 1,024 tokens) for Anthropic to cache."""


@pytest.mark.anyio
@pytest.mark.parametrize("switch", [True, False])
async def test_a_long_system_prompt_and_fixed_start_are_marked_for_the_cache(
    switch: bool,
) -> None:
    start = "Ticket follows. " * 300
    request = CallRequest(
        model="claude-sonnet-4-5",
        prompt=start + "my invoice is wrong",
        system=LONG,
        prompt_cache=switch,
        cache_prefix=len(start),
    )
    async with mock_provider("anthropic", json_response(200, MESSAGE), key=KEY) as mock:
        await mock.provider.call(request)
    mark = {"cache_control": {"type": "ephemeral"}}
    if not switch:  # --prompt-cache off: plain strings, as before
        assert mock.body["system"] == LONG
        assert mock.body["messages"][0]["content"] == request.prompt
        return
    assert mock.body["system"] == [{"type": "text", "text": LONG, **mark}]
    assert mock.body["messages"][0]["content"] == [
        {"type": "text", "text": start, **mark},
        {"type": "text", "text": "my invoice is wrong"},
    ]


@pytest.mark.anyio
async def test_a_short_system_prompt_is_not_marked() -> None:
    request = CallRequest(
        model="claude-sonnet-4-5", prompt="Hi there", system="Be terse.", prompt_cache=True,
        cache_prefix=3,
    )  # fmt: skip
    async with mock_provider("anthropic", json_response(200, MESSAGE), key=KEY) as mock:
        await mock.provider.call(request)
    assert mock.body["system"] == "Be terse."
    assert mock.body["messages"][0]["content"] == "Hi there"


@pytest.mark.anyio
async def test_max_tokens_stop_is_length() -> None:
    answer = {**MESSAGE, "stop_reason": "max_tokens"}
    async with mock_provider("anthropic", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.finish_reason == "length"


def rate_headers(reset_in_s: float) -> dict[str, str]:
    reset = (datetime.now(UTC) + timedelta(seconds=reset_in_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {}
    for name, limit, remaining in (
        ("requests", 50, 49),
        ("tokens", 90000, 89000),
        ("input-tokens", 40000, 39500),
        ("output-tokens", 8000, 7500),
    ):
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers


@pytest.mark.anyio
async def test_rate_limit_headers_become_rate_limit_info() -> None:
    async with mock_provider(
        "anthropic", json_response(200, MESSAGE, rate_headers(30)), key=KEY
    ) as mock:
        result = await mock.provider.call(REQUEST)
    info = result.rate_limits
    assert info is not None
    assert (info.requests_limit, info.requests_remaining) == (50, 49)
    assert (info.tokens_limit, info.tokens_remaining) == (90000, 89000)
    assert (info.input_tokens_limit, info.input_tokens_remaining) == (40000, 39500)
    assert (info.output_tokens_limit, info.output_tokens_remaining) == (8000, 7500)
    assert info.requests_reset_s == pytest.approx(30, abs=2)
    assert info.tokens_reset_s == pytest.approx(30, abs=2)


@pytest.mark.anyio
async def test_refusal_is_content_filter() -> None:
    answer = {**MESSAGE, "content": [], "stop_reason": "refusal"}
    async with mock_provider("anthropic", json_response(200, answer), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "content_filter"


@pytest.mark.anyio
async def test_429_carries_the_rate_limit_headers() -> None:
    headers = {**rate_headers(5), "retry-after": "5"}
    body = anthropic_error("rate_limit_error", "Rate limited")
    async with mock_provider("anthropic", json_response(429, body, headers), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.rate_limits is not None
    assert caught.value.rate_limits.output_tokens_limit == 8000
