"""OpenAI Chat Completions (and compatible servers) against recorded-shape responses."""

from __future__ import annotations

from typing import Any

import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider
from tests.providers._bodies import openai_error

KEY = "sk-test-0123456789abcdefWXYZ"

COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}

RATE_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "199942",
    "x-ratelimit-reset-tokens": "6m0s",
}


def completion(**changes: Any) -> dict[str, Any]:
    choice = {**COMPLETION["choices"][0], **changes.pop("choice", {})}
    return {**COMPLETION, "choices": [choice], **changes}


REQUEST = CallRequest(model="gpt-4o-mini", prompt="Say hello")


@pytest.mark.anyio
async def test_plain_call_sends_chat_completions_and_parses_the_answer() -> None:
    async with mock_provider("openai", json_response(200, COMPLETION, RATE_HEADERS)) as mock:
        result = await mock.provider.call(REQUEST)
    assert str(mock.request.url) == "https://api.openai.com/v1/chat/completions"
    assert mock.request.method == "POST"
    assert mock.request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(mock.request.url)
    assert mock.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 1024,
    }
    assert result.text == "Hello! How can I assist you today?"
    assert result.usage == Usage(input_tokens=19, output_tokens=10, cached_tokens=0)
    assert result.finish_reason == "stop"
    assert result.parsed is None


@pytest.mark.anyio
async def test_system_prompt_sampling_stop_and_params_reach_the_body() -> None:
    request = CallRequest(
        model="o4-mini",
        prompt="Classify: refund please",
        system="You label support tickets.",
        max_tokens=50,
        temperature=0.2,
        stop=("\n\n",),
        params={"reasoning_effort": "low", "top_p": 0.9},
    )
    async with mock_provider("openai", json_response(200, COMPLETION)) as mock:
        await mock.provider.call(request)
    assert mock.body == {
        "model": "o4-mini",
        "messages": [
            {"role": "system", "content": "You label support tickets."},
            {"role": "user", "content": "Classify: refund please"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "stop": ["\n\n"],
        "reasoning_effort": "low",
        "top_p": 0.9,
    }


STRICT_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["refund", "bug", "other"]},
        "tags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["label", "tags"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (STRICT_SCHEMA, True),
        ({**STRICT_SCHEMA, "required": ["label"]}, False),
        ({k: v for k, v in STRICT_SCHEMA.items() if k != "additionalProperties"}, False),
        ({"type": "array", "items": {"type": "string"}}, False),
    ],
    ids=["strict", "optional-field", "open-object", "array-root"],
)
@pytest.mark.anyio
async def test_schema_becomes_response_format_strict_only_when_it_qualifies(
    schema: dict[str, Any], strict: bool
) -> None:
    request = CallRequest(
        model="gpt-4o-mini", prompt="x", schema=schema, schema_name="ticket label"
    )
    answer = completion(choice={"message": {"role": "assistant", "content": '{"label":"bug"}'}})
    async with mock_provider("openai", json_response(200, answer)) as mock:
        result = await mock.provider.call(request)
    assert mock.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "ticket_label", "schema": schema, "strict": strict},
    }
    assert result.text == '{"label":"bug"}'


@pytest.mark.anyio
async def test_cached_and_reasoning_tokens_are_reported() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
        "completion_tokens_details": {"reasoning_tokens": 256},
    }
    async with mock_provider("openai", json_response(200, completion(usage=usage))) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.usage == Usage(
        input_tokens=2006, output_tokens=300, cached_tokens=1920, reasoning_tokens=256
    )


@pytest.mark.anyio
async def test_rate_limit_headers_become_rate_limit_info() -> None:
    headers = {**RATE_HEADERS, "x-ratelimit-reset-requests": "1.5s"}
    async with mock_provider("openai", json_response(200, COMPLETION, headers)) as mock:
        result = await mock.provider.call(REQUEST)
    info = result.rate_limits
    assert info is not None
    assert (info.requests_limit, info.requests_remaining) == (10000, 9999)
    assert info.requests_reset_s == pytest.approx(1.5)
    assert (info.tokens_limit, info.tokens_remaining) == (200000, 199942)
    assert info.tokens_reset_s == pytest.approx(360.0)


@pytest.mark.anyio
async def test_no_rate_limit_headers_means_no_info() -> None:
    async with mock_provider("openai", json_response(200, COMPLETION)) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.rate_limits is None


@pytest.mark.anyio
async def test_local_preset_sends_max_tokens_and_no_auth_header() -> None:
    async with mock_provider("ollama", json_response(200, COMPLETION), key=None) as mock:
        await mock.provider.call(REQUEST)
    assert str(mock.request.url) == "http://localhost:11434/v1/chat/completions"
    assert "authorization" not in mock.request.headers
    assert mock.body["max_tokens"] == 1024
    assert "max_completion_tokens" not in mock.body


@pytest.mark.anyio
async def test_base_url_override_points_anywhere() -> None:
    async with mock_provider(
        "openai", json_response(200, COMPLETION), base_url="http://127.0.0.1:9/v1/"
    ) as mock:
        await mock.provider.call(REQUEST)
    assert str(mock.request.url) == "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.anyio
async def test_429_carries_the_rate_limit_headers() -> None:
    body = openai_error("Rate limit reached", "requests", "rate_limit_exceeded")
    headers = {**RATE_HEADERS, "x-ratelimit-remaining-requests": "0"}
    async with mock_provider("openai", json_response(429, body, headers)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.rate_limits is not None
    assert caught.value.rate_limits.requests_remaining == 0


@pytest.mark.anyio
async def test_refusal_is_content_filter() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "refusal": "I'm sorry, I can't help with that.",
    }
    answer = completion(choice={"message": message})
    async with mock_provider("openai", json_response(200, answer)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "content_filter"
    assert "I'm sorry, I can't help with that." in caught.value.message
    assert caught.value.usage is not None and caught.value.usage.input_tokens > 0  # still billed


@pytest.mark.anyio
async def test_content_filter_finish_reason_is_content_filter() -> None:
    answer = completion(
        choice={"message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}
    )
    async with mock_provider("openai", json_response(200, answer)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "content_filter"
