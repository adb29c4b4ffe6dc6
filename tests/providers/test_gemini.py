"""Gemini generateContent against recorded-shape responses."""

from __future__ import annotations

import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider
from tests.providers._bodies import google_error

KEY = "AIzaSyTest0123456789abcdefghijklmnopWXYZ"

ANSWER = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Hello! How can I help you today?"}], "role": "model"},
            "finishReason": "STOP",
            "avgLogprobs": -0.0123,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 8,
        "candidatesTokenCount": 9,
        "totalTokenCount": 17,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
    },
    "modelVersion": "gemini-2.0-flash",
    "responseId": "k3UfaNvtHdKvmecPysGJ4AM",
}

REQUEST = CallRequest(model="gemini-2.0-flash", prompt="Hello")


@pytest.mark.anyio
async def test_plain_call_posts_generate_content_with_the_key_in_a_header() -> None:
    async with mock_provider("gemini", json_response(200, ANSWER), key=KEY) as mock:
        result = await mock.provider.call(REQUEST)
    request = mock.request
    assert (
        str(request.url)
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert request.url.query == b""
    assert KEY not in str(request.url)
    assert request.headers["x-goog-api-key"] == KEY
    assert mock.body == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {"maxOutputTokens": 1024},
    }
    assert result.text == "Hello! How can I help you today?"
    assert result.usage == Usage(input_tokens=8, output_tokens=9, cached_tokens=0)
    assert result.finish_reason == "stop"
    assert result.rate_limits is None


@pytest.mark.anyio
async def test_system_sampling_stop_and_params_land_where_gemini_wants_them() -> None:
    request = CallRequest(
        model="models/gemini-2.5-flash",
        prompt="Summarise",
        system="Be terse.",
        max_tokens=200,
        temperature=0.3,
        stop=("END",),
        params={
            "topP": 0.9,
            "thinkingConfig": {"thinkingBudget": 0},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        },
    )
    async with mock_provider("gemini", json_response(200, ANSWER), key=KEY) as mock:
        await mock.provider.call(request)
    assert mock.request.url.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert mock.body == {
        "contents": [{"role": "user", "parts": [{"text": "Summarise"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {
            "maxOutputTokens": 200,
            "temperature": 0.3,
            "stopSequences": ["END"],
            "topP": 0.9,
            "thinkingConfig": {"thinkingBudget": 0},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }


@pytest.mark.anyio
async def test_schema_asks_for_json_with_the_json_schema() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    answer = {
        **ANSWER,
        "candidates": [
            {
                "content": {"parts": [{"text": '{"label": "bug"}'}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
    }
    request = CallRequest(model="gemini-2.0-flash", prompt="x", schema=schema)
    async with mock_provider("gemini", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(request)
    config = mock.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    assert result.text == '{"label": "bug"}'


@pytest.mark.anyio
async def test_cached_and_thinking_tokens_and_thought_parts() -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Let me think about this...", "thought": True},
                        {"text": "The answer is 4."},
                    ],
                    "role": "model",
                },
                "finishReason": "MAX_TOKENS",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 1200,
            "cachedContentTokenCount": 1024,
            "candidatesTokenCount": 6,
            "thoughtsTokenCount": 120,
            "totalTokenCount": 1326,
        },
    }
    async with mock_provider("gemini", json_response(200, answer), key=KEY) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.text == "The answer is 4."
    assert result.usage == Usage(
        input_tokens=1200, output_tokens=126, cached_tokens=1024, reasoning_tokens=120
    )
    assert result.finish_reason == "length"


@pytest.mark.anyio
async def test_blocked_prompt_is_content_filter() -> None:
    answer = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 12559, "totalTokenCount": 12559},
        "modelVersion": "gemini-1.5-flash-002",
    }
    async with mock_provider("gemini", json_response(200, answer), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "content_filter"
    assert "PROHIBITED_CONTENT" in caught.value.message


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "SPII"])
@pytest.mark.anyio
async def test_blocked_candidate_is_content_filter(reason: str) -> None:
    answer = {
        "candidates": [{"finishReason": reason, "index": 0, "safetyRatings": []}],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
    }
    async with mock_provider("gemini", json_response(200, answer), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "content_filter"
    assert reason in caught.value.message


@pytest.mark.anyio
async def test_an_error_wrapped_in_a_list_is_read() -> None:
    body = [google_error(404, "NOT_FOUND", "models/gemini-9 is not found")]
    async with mock_provider("gemini", json_response(404, body), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "not_found"
    assert "models/gemini-9 is not found" in caught.value.message


@pytest.mark.anyio
async def test_no_candidates_without_a_block_is_a_server_error() -> None:
    async with mock_provider("gemini", json_response(200, {"usageMetadata": {}}), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
