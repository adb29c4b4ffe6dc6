"""Gemini generateContent (``POST /v1beta/models/{model}:generateContent``) on the wire.

Gemini sends no rate-limit headers: its only signal is the 429
``RESOURCE_EXHAUSTED`` body, whose ``details`` carry a ``google.rpc.QuotaFailure``
naming the quota (per minute or per day) and a ``google.rpc.RetryInfo`` with
``retryDelay`` like ``"1.5s"``. A wrong key is the real 400 ``INVALID_ARGUMENT``
with ``ErrorInfo.reason = API_KEY_INVALID`` (not a 401); a missing key is 403.
Request fields are accepted in both proto-JSON spellings (``generationConfig``
and ``generation_config``), as the real endpoint does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tests.fakeserver._buckets import BucketState, Denial
from tests.fakeserver._config import LimitOverride, ServerConfig
from tests.fakeserver._dialect import (
    Answer,
    BadRequest,
    Call,
    Dialect,
    ErrorKind,
    Reply,
    Tokens,
    count_at,
    decimal_seconds,
    json_reply,
    object_at,
    texts_of,
)

_TYPES = "type.googleapis.com/google.rpc."
_SERVICE = "generativelanguage.googleapis.com"
_METRICS = {
    "requests": (
        "generate_content_paid_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel",
    ),
    "tokens": (
        "generate_content_paid_tier_input_token_count",
        "GenerateContentPaidTierInputTokensPerModelPerMinute",
    ),
}
_DAILY_QUOTA = ("generate_requests_per_model_per_day", "GenerateRequestsPerDayPerProjectPerModel")
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}
_BLOCKED = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


class GeminiDialect(Dialect):
    name = "gemini"
    context_window = 1_048_576

    def key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or None

    def parse(self, headers: Mapping[str, str], payload: Any, path_model: str | None) -> Call:
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        system = object_at(payload, "systemInstruction", "system_instruction")
        texts = texts_of(system.get("parts"))
        for content in contents:
            texts += texts_of(content.get("parts") if isinstance(content, dict) else None)
        config = object_at(payload, "generationConfig", "generation_config")
        mime = config.get("responseMimeType", config.get("response_mime_type"))
        json_mode = mime == "application/json"
        schema = (
            object_at(config, "responseJsonSchema", "response_json_schema")
            or object_at(config, "responseSchema", "response_schema")
            or None
        )
        if schema is not None and not json_mode:
            raise BadRequest(
                "* GenerateContentRequest.generation_config.response_mime_type: response_schema "
                "requires response_mime_type to be application/json"
            )
        return Call(
            path_model or "",
            "\n".join(texts),
            count_at(config, "maxOutputTokens", "max_output_tokens"),
            schema=schema,
            json_mode=json_mode,
            cacheable="\n".join(texts_of(system.get("parts"))),
        )

    def limits(self, limits: LimitOverride) -> dict[str, float | None]:
        return {"requests": limits.rpm, "tokens": limits.tpm}

    def charges(self, call: Call, tokens: Tokens, config: ServerConfig) -> dict[str, float]:
        return {"requests": 1, "tokens": tokens.input}

    def limit_headers(self, state: Mapping[str, BucketState], now: float) -> dict[str, str]:
        return {}

    def rate_limited(self, model: str, denial: Denial) -> Reply:
        metric, quota_id = _METRICS[denial.dimension]
        return _exhausted(model, metric, quota_id, denial.limit, denial.wait_s)

    def error(
        self,
        kind: ErrorKind,
        *,
        model: str = "",
        key: str | None = None,
        detail: str = "",
        param: str | None = None,
        input_tokens: int = 0,
        wait_s: float = 0.0,
    ) -> Reply:
        match kind:
            case "bad_request":
                return _error(400, "INVALID_ARGUMENT", detail)
            case "missing_key":
                return _error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to "
                    "call this API.",
                )
            case "bad_key":
                message = "API key not valid. Please pass a valid API key."
                details: list[dict[str, Any]] = [
                    {
                        "@type": _TYPES + "ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": _SERVICE},
                    },
                    {"@type": _TYPES + "LocalizedMessage", "locale": "en-US", "message": message},
                ]
                return _error(400, "INVALID_ARGUMENT", message, details)
            case "not_found":
                return _error(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version v1beta, or is not supported "
                    "for generateContent. Call ListModels to see the list of available models "
                    "and their supported methods.",
                )
            case "500":
                return _error(
                    500,
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting",
                )
            case "503" | "529":
                return _error(
                    503, "UNAVAILABLE", "The model is overloaded. Please try again later."
                )
            case "context_length":
                return _error(
                    400,
                    "INVALID_ARGUMENT",
                    f"The input token count ({self.context_window + input_tokens}) exceeds the "
                    f"maximum number of tokens allowed ({self.context_window}).",
                )
            case "quota":
                metric, quota_id = _DAILY_QUOTA
                return _exhausted(model, metric, quota_id, 0, wait_s)

    def answer(self, call: Call, answer: Answer, request_id: str) -> bytes:
        tokens = answer.tokens
        candidate: dict[str, Any]
        if answer.outcome == "refusal":
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": _BLOCKED}
        else:
            candidate = {
                "content": {"parts": [{"text": answer.text}], "role": "model"},
                "finishReason": _FINISH[answer.outcome],
                "index": 0,
            }
        usage: dict[str, Any] = {
            "promptTokenCount": tokens.input,
            "candidatesTokenCount": tokens.output,
            "totalTokenCount": tokens.input + tokens.output,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens.input}],
        }
        if tokens.cached:
            usage["cachedContentTokenCount"] = tokens.cached
        return orjson.dumps(
            {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": call.model,
                "responseId": request_id,
            }
        )


def _exhausted(model: str, metric: str, quota_id: str, limit: float, wait_s: float | None) -> Reply:
    message = f"{_QUOTA_MESSAGE}\n* Quota exceeded for metric: {_SERVICE}/{metric}, "
    message += f"limit: {limit:.0f}, model: {model}"
    violation = {
        "quotaMetric": f"{_SERVICE}/{metric}",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": f"{limit:.0f}",
    }
    details: list[dict[str, Any]] = [
        {"@type": _TYPES + "QuotaFailure", "violations": [violation]},
        {
            "@type": _TYPES + "Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if wait_s is not None:
        message += f"\nPlease retry in {decimal_seconds(wait_s)}."
        details.append({"@type": _TYPES + "RetryInfo", "retryDelay": decimal_seconds(wait_s)})
    return _error(429, "RESOURCE_EXHAUSTED", message, details)


def _error(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        error["details"] = details
    return json_reply(status, {"error": error})
