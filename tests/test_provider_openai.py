"""OpenAI Chat Completions (and compatible servers) against recorded-shape responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import anyio
import httpx
import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from engine.providers._headers import parse_duration, retry_after
from tests._mock_provider import json_response, mock_provider

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


def openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


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
async def test_cached_tokens_are_reported() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    }
    async with mock_provider("openai", json_response(200, completion(usage=usage))) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.usage == Usage(input_tokens=2006, output_tokens=300, cached_tokens=1920)


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


ERROR_CASES = [
    pytest.param(
        429,
        openai_error(
            "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM):"
            " Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
        ),
        {"retry-after-ms": "1500", "retry-after": "2"},
        "rate_limited",
        1.5,
        id="429-retry-after-ms-wins",
    ),
    pytest.param(
        429,
        openai_error("Rate limit reached", "tokens", "rate_limit_exceeded"),
        {"retry-after": "7"},
        "rate_limited",
        7.0,
        id="429-retry-after-seconds",
    ),
    pytest.param(
        429,
        openai_error(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        {},
        "quota",
        None,
        id="429-insufficient-quota",
    ),
    pytest.param(
        400,
        openai_error(
            "This model's maximum context length is 128000 tokens. However, your messages"
            " resulted in 130000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        {},
        "context_length",
        None,
        id="400-context-length",
    ),
    pytest.param(
        400,
        openai_error(
            "Unsupported parameter: 'max_tokens' is not supported with this model.",
            "invalid_request_error",
            "unsupported_parameter",
        ),
        {},
        "bad_request",
        None,
        id="400-bad-request",
    ),
    pytest.param(
        401,
        openai_error(
            "Incorrect API key provided: sk-test-********WXYZ.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        {},
        "auth",
        None,
        id="401",
    ),
    pytest.param(
        403,
        openai_error(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
        {},
        "auth",
        None,
        id="403",
    ),
    pytest.param(
        404,
        openai_error(
            "The model `gpt-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        {},
        "not_found",
        None,
        id="404-model",
    ),
    pytest.param(
        500,
        openai_error(
            "The server had an error while processing your request.", "server_error", None
        ),
        {},
        "server_error",
        None,
        id="500",
    ),
    pytest.param(
        503,
        openai_error(
            "The engine is currently overloaded, please try again later.", "server_error", None
        ),
        {"retry-after": "3"},
        "overloaded",
        3.0,
        id="503",
    ),
    pytest.param(
        529,
        {"error": {"message": "overloaded"}},
        {},
        "overloaded",
        None,
        id="529",
    ),
    pytest.param(
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you"
            " requested 5000 tokens.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        {},
        "context_length",
        None,
        id="vllm-context-length",
    ),
    pytest.param(
        400,
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
            }
        },
        {},
        "context_length",
        None,
        id="llamacpp-context-size",
    ),
    pytest.param(
        402,
        {"error": {"code": 402, "message": "Insufficient credits. Add more using /credits"}},
        {},
        "quota",
        None,
        id="openrouter-402",
    ),
    pytest.param(
        400,
        {"error": "model 'llama9' not found"},
        {},
        "bad_request",
        None,
        id="bare-error-string",
    ),
]


@pytest.mark.parametrize(("status", "body", "headers", "kind", "wait"), ERROR_CASES)
@pytest.mark.anyio
async def test_error_statuses_map_to_kinds_keeping_the_message(
    status: int, body: dict[str, Any], headers: dict[str, str], kind: str, wait: float | None
) -> None:
    async with mock_provider("openai", json_response(status, body, headers)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    error = caught.value
    assert error.kind == kind
    assert error.status == status
    if wait is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(wait, abs=1.5)
    provider_message = (
        body["error"]
        if isinstance(body.get("error"), str)
        else (body.get("error", body)["message"])
    )
    assert provider_message[:60] in error.message
    assert "\n" not in error.message


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
async def test_html_error_page_becomes_one_short_line() -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 2000 + "</body>"
    answer = httpx.Response(502, content=page.encode(), headers={"content-type": "text/html"})
    async with mock_provider("openai", answer) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
    assert caught.value.message.startswith("HTTP 502: 502 Bad Gateway")
    assert "<" not in caught.value.message
    assert len(caught.value.message) <= 300


@pytest.mark.anyio
async def test_malformed_json_on_200_is_a_server_error() -> None:
    answer = httpx.Response(200, content=b'{"id": "chatcmpl-1", "choices": [')
    async with mock_provider("openai", answer) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
    assert "malformed JSON from openai" in caught.value.message


@pytest.mark.anyio
async def test_unexpected_shape_on_200_is_a_server_error() -> None:
    async with mock_provider("openai", json_response(200, {"object": "list"})) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
    assert "unexpected response shape from openai" in caught.value.message


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


def _cause(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


TRANSPORT_CASES = [
    pytest.param(httpx.ReadTimeout("timed out"), "timeout", id="read-timeout"),
    pytest.param(httpx.ConnectTimeout("timed out"), "timeout", id="connect-timeout"),
    pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), "connection", id="refused"),
    pytest.param(httpx.ReadError("[Errno 104] Connection reset by peer"), "connection", id="reset"),
    pytest.param(
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        "connection",
        id="truncated-body",
    ),
    pytest.param(
        _cause(httpx.ConnectTimeout("Server disconnected"), aiohttp.ServerDisconnectedError()),
        "connection",
        id="aiohttp-disconnect-mislabelled-as-timeout",
    ),
    pytest.param(
        _cause(httpx.ReadTimeout("Timeout on reading"), aiohttp.SocketTimeoutError()),
        "timeout",
        id="aiohttp-socket-timeout",
    ),
    pytest.param(
        aiohttp.ClientPayloadError("Response payload is not completed"),
        "connection",
        id="aiohttp-raw-payload-error",
    ),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), "connection", id="oserror"),
]


@pytest.mark.parametrize(("exception", "kind"), TRANSPORT_CASES)
@pytest.mark.anyio
async def test_transport_failures_become_timeout_or_connection(
    exception: BaseException, kind: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    async with mock_provider("openai", fail) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == kind
    assert "openai" in caught.value.message


@pytest.mark.anyio
async def test_whole_call_deadline_catches_a_server_that_never_finishes() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    request = CallRequest(model="gpt-4o-mini", prompt="x", timeout_s=0.05)
    async with mock_provider("openai", hang) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(request)
    assert caught.value.kind == "timeout"
    assert "0.05 s" in caught.value.message


@pytest.mark.anyio
async def test_cancellation_propagates_and_is_not_an_error() -> None:
    started = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with mock_provider("openai", hang) as mock:
        async with anyio.create_task_group() as group:
            group.start_soon(mock.provider.call, REQUEST)
            await started.wait()
            group.cancel_scope.cancel()
    assert group.cancel_scope.cancel_called


@pytest.mark.anyio
async def test_a_key_echoed_by_the_server_is_redacted_from_the_message() -> None:
    body = openai_error(
        f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key"
    )
    async with mock_provider("openai", json_response(401, body)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert KEY not in caught.value.message
    assert "[redacted]" in caught.value.message


@pytest.mark.anyio
async def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    body = openai_error("Rate limit reached", "tokens", "rate_limit_exceeded")
    async with mock_provider("openai", json_response(429, body, {"retry-after": when})) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.retry_after == pytest.approx(20, abs=1.5)


def test_retry_after_variants_against_a_fixed_clock() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}, now=now) == 0.25
    assert retry_after({"retry-after": "9"}, now=now) == 9.0
    assert retry_after({"retry-after": "Sat, 01 Mar 2025 12:00:30 GMT"}, now=now) == 30.0
    assert retry_after({"retry-after": "Sat, 01 Mar 2025 11:00:00 GMT"}, now=now) == 0.0
    assert retry_after({"retry-after": "soon"}, now=now) is None
    assert retry_after({}, now=now) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("12ms", 0.012), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("20", 20.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
