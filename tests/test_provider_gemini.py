"""Gemini generateContent against recorded-shape responses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider

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


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(*quota_ids: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/"
                "generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                "quotaValue": "200",
            }
            for quota_id in quota_ids
        ],
    }


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
    assert result.usage == Usage(input_tokens=1200, output_tokens=126, cached_tokens=1024)
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


ERROR_CASES = [
    pytest.param(
        429,
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            retry_info("45.8s"),
        ),
        "rate_limited",
        45.8,
        id="429-retry-info",
    ),
    pytest.param(
        429,
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            retry_info("7s"),
        ),
        "quota",
        None,
        id="429-per-day-quota",
    ),
    pytest.param(
        429,
        google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        "rate_limited",
        None,
        id="429-bare",
    ),
    pytest.param(
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
        ),
        "auth",
        None,
        id="400-api-key-invalid",
    ),
    pytest.param(
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200293) exceeds the maximum number of tokens allowed"
            " (1048576).",
        ),
        "context_length",
        None,
        id="400-token-count",
    ),
    pytest.param(
        400,
        google_error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo".'),
        "bad_request",
        None,
        id="400",
    ),
    pytest.param(
        403,
        google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
        "auth",
        None,
        id="403",
    ),
    pytest.param(
        404,
        google_error(
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta, or is not supported for"
            " generateContent.",
        ),
        "not_found",
        None,
        id="404",
    ),
    pytest.param(
        500,
        google_error(500, "INTERNAL", "An internal error has occurred."),
        "server_error",
        None,
        id="500",
    ),
    pytest.param(
        503,
        google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "overloaded",
        None,
        id="503",
    ),
]


@pytest.mark.parametrize(("status", "body", "kind", "wait"), ERROR_CASES)
@pytest.mark.anyio
async def test_error_statuses_map_to_kinds_keeping_the_message(
    status: int, body: dict[str, Any], kind: str, wait: float | None
) -> None:
    async with mock_provider("gemini", json_response(status, body), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    error = caught.value
    assert error.kind == kind
    assert error.status == status
    assert error.retry_after == (pytest.approx(wait) if wait is not None else None)
    assert body["error"]["message"][:60] in error.message


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


@pytest.mark.anyio
async def test_truncated_body_is_a_connection_error() -> None:
    def truncated(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    async with mock_provider("gemini", truncated, key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "connection"
