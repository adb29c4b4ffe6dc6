"""Every provider's error replies map to the same kinds, each keeping the provider's message.

The retry policy, the failures screen and the exit codes all read
``ProviderError.kind``, never a provider's own status names, so the mapping
is one contract with three dialects. Each provider's table holds replies in
the shape its API sends (status, body, headers) and the kind and wait the
engine must make of them; one test checks them all the same way: the kind,
the status, the wait the server asked for, and the provider's own message,
on one line.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine._errors import ProviderError
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider
from tests.providers._bodies import (
    anthropic_error,
    google_error,
    openai_error,
    quota_failure,
    retry_info,
)

OPENAI = [
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


ANTHROPIC = [
    pytest.param(
        429,
        anthropic_error(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50,000 input"
            " tokens per minute.",
        ),
        {"retry-after": "12"},
        "rate_limited",
        12.0,
        id="429-retry-after",
    ),
    pytest.param(
        429,
        anthropic_error("rate_limit_error", "Rate limited"),
        {},
        "rate_limited",
        None,
        id="429-plain-without-retry-after",
    ),
    pytest.param(
        429,
        anthropic_error(
            "rate_limit_error",
            "You have reached your specified API usage limits. You will regain access on"
            " 2025-07-01 at 00:00 UTC.",
        ),
        {},
        "quota",
        None,
        id="429-spend-cap",
    ),
    pytest.param(
        400,
        anthropic_error(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans &"
            " Billing to upgrade or purchase credits.",
        ),
        {},
        "quota",
        None,
        id="400-credit-balance",
    ),
    pytest.param(
        402, anthropic_error("billing_error", "Billing error"), {}, "quota", None, id="billing"
    ),
    pytest.param(
        529,
        anthropic_error("overloaded_error", "Overloaded"),
        {},
        "overloaded",
        None,
        id="529",
    ),
    pytest.param(
        400,
        anthropic_error(
            "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"
        ),
        {},
        "context_length",
        None,
        id="400-prompt-too-long",
    ),
    pytest.param(
        400,
        anthropic_error("invalid_request_error", "max_tokens: Field required"),
        {},
        "bad_request",
        None,
        id="400",
    ),
    pytest.param(
        401,
        anthropic_error("authentication_error", "invalid x-api-key"),
        {},
        "auth",
        None,
        id="401",
    ),
    pytest.param(
        403,
        anthropic_error(
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        {},
        "auth",
        None,
        id="403",
    ),
    pytest.param(
        404,
        anthropic_error("not_found_error", "model: claude-9"),
        {},
        "not_found",
        None,
        id="404",
    ),
    pytest.param(
        500,
        anthropic_error("api_error", "Internal server error"),
        {},
        "server_error",
        None,
        id="500",
    ),
    pytest.param(
        504,
        anthropic_error("timeout_error", "Request timeout"),
        {},
        "server_error",
        None,
        id="504",
    ),
]


GEMINI = [
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
        {},
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
        {},
        "quota",
        None,
        id="429-per-day-quota",
    ),
    pytest.param(
        429,
        google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        {},
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
        {},
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
        {},
        "context_length",
        None,
        id="400-token-count",
    ),
    pytest.param(
        400,
        google_error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo".'),
        {},
        "bad_request",
        None,
        id="400",
    ),
    pytest.param(
        403,
        google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
        {},
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
        {},
        "not_found",
        None,
        id="404",
    ),
    pytest.param(
        500,
        google_error(500, "INTERNAL", "An internal error has occurred."),
        {},
        "server_error",
        None,
        id="500",
    ),
    pytest.param(
        503,
        google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        {},
        "overloaded",
        None,
        id="503",
    ),
]

TABLES = {"openai": OPENAI, "anthropic": ANTHROPIC, "gemini": GEMINI}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
}
KEYS = {
    "openai": "sk-test-0123456789abcdefWXYZ",
    "anthropic": "sk-ant-api03-test0123456789abcdefWXYZ",
    "gemini": "AIzaSyTest0123456789abcdefghijklmnopWXYZ",
}


def _cases() -> list[Any]:
    """Every table's cases, each led by its provider's name and named ``provider-case``."""
    return [
        pytest.param(provider, *case.values, id=f"{provider}-{case.id}")
        for provider, table in TABLES.items()
        for case in table
    ]


def _message_of(body: dict[str, Any]) -> str:
    """The provider's own message in an error body: ``{"error": {"message"}}`` in all three
    APIs; OpenAI-compatible servers also send a bare ``{"error": "..."}`` or a top-level one."""
    error = body.get("error", body)
    return error if isinstance(error, str) else str(error["message"])


@pytest.mark.parametrize(("provider", "status", "body", "headers", "kind", "wait"), _cases())
@pytest.mark.anyio
async def test_error_statuses_map_to_kinds_keeping_the_message(
    provider: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    kind: str,
    wait: float | None,
) -> None:
    answer = json_response(status, body, headers)
    async with mock_provider(provider, answer, key=KEYS[provider]) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(CallRequest(model=MODELS[provider], prompt="Hello"))
    error = caught.value
    assert error.kind == kind
    assert error.status == status
    assert error.retry_after == (None if wait is None else pytest.approx(wait))
    assert _message_of(body)[:60] in error.message
    assert "\n" not in error.message
