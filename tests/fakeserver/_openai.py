"""OpenAI Chat Completions (``POST /v1/chat/completions``) on the wire.

Shapes follow the official OpenAPI spec (``CreateChatCompletionResponse``,
``ErrorResponse``) and the messages the real API sends: the 429 text quotes
limit, used and requested like ``Rate limit reached for gpt-4o-mini ... on
requests per min (RPM): Limit 600, Used 600, Requested 1. Please try again in
100ms.``, with ``type`` naming the dimension and ``code`` ``rate_limit_exceeded``.
TPM is charged up front at ``max(input estimate, max_tokens)`` as OpenAI's rate
limit guide says (``openai_tpm_charge="sum"`` charges both instead).
"""

from __future__ import annotations

import time
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
    go_duration,
    json_reply,
    object_at,
    retry_after_s,
    texts_of,
)

_DIMENSIONS = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}
_LIMITS_URL = "https://platform.openai.com/account/rate-limits"
_KEYS_URL = "https://platform.openai.com/account/api-keys"
_REFUSAL = "I'm sorry, but I can't help with that request."
_SHOWN_KEY_CHARS = 4


class OpenAIDialect(Dialect):
    name = "openai"
    context_window = 128_000

    def key(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    def parse(self, headers: Mapping[str, str], payload: Any, path_model: str | None) -> Call:
        model = payload.get("model")
        if not isinstance(model, str):
            raise BadRequest("you must provide a model parameter", param="model")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("[] is too short - 'messages'", param="messages")
        text = "\n".join(
            t for m in messages if isinstance(m, dict) for t in texts_of(m.get("content"))
        )
        max_tokens = count_at(payload, "max_completion_tokens", "max_tokens")
        response_format = object_at(payload, "response_format")
        schema = None
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise BadRequest(
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    param="response_format.json_schema.name",
                )
            schema = spec.get("schema", {})
        json_mode = response_format.get("type") in ("json_schema", "json_object")
        system = [
            t
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
            for t in texts_of(m.get("content"))
        ]
        return Call(
            model,
            text,
            max_tokens,
            schema=schema,
            json_mode=json_mode,
            cacheable="\n".join(system),
        )

    def limits(self, limits: LimitOverride) -> dict[str, float | None]:
        return {"requests": limits.rpm, "tokens": limits.tpm}

    def charges(self, call: Call, tokens: Tokens, config: ServerConfig) -> dict[str, float]:
        reserved = call.max_tokens or 0
        charged = (
            max(tokens.input, reserved)
            if config.openai_tpm_charge == "max"
            else tokens.input + reserved
        )
        return {"requests": 1, "tokens": charged}

    def limit_headers(self, state: Mapping[str, BucketState], now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for dim, bucket in state.items():
            headers[f"x-ratelimit-limit-{dim}"] = str(int(bucket.limit))
            headers[f"x-ratelimit-remaining-{dim}"] = str(int(bucket.remaining))
            headers[f"x-ratelimit-reset-{dim}"] = go_duration(bucket.reset_s)
        return headers

    def rate_limited(self, model: str, denial: Denial) -> Reply:
        where = f"for {model} in organization org-fake on {_DIMENSIONS[denial.dimension]}"
        if denial.wait_s is None:
            message = (
                f"Request too large {where}: Limit {denial.limit:.0f}, Requested "
                f"{denial.requested:.0f}. The input or output tokens must be reduced in order "
                f"to run successfully. Visit {_LIMITS_URL} to learn more."
            )
            return self._error(429, message, type=denial.dimension, code="rate_limit_exceeded")
        message = (
            f"Rate limit reached {where}: Limit {denial.limit:.0f}, Used {denial.used:.0f}, "
            f"Requested {denial.requested:.0f}. Please try again in {go_duration(denial.wait_s)}. "
            f"Visit {_LIMITS_URL} to learn more."
        )
        headers = {
            "retry-after": retry_after_s(denial.wait_s),
            "retry-after-ms": str(round(denial.wait_s * 1000)),
        }
        return self._error(
            429, message, type=denial.dimension, code="rate_limit_exceeded", headers=headers
        )

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
        invalid = "invalid_request_error"
        match kind:
            case "bad_request":
                return self._error(400, detail, type=invalid, param=param)
            case "missing_key":
                return self._error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    f"YOUR_KEY). You can obtain an API key from {_KEYS_URL}.",
                    type=invalid,
                )
            case "bad_key":
                return self._error(
                    401,
                    f"Incorrect API key provided: {_masked(key or '')}. You can find your API "
                    f"key at {_KEYS_URL}.",
                    type=invalid,
                    code="invalid_api_key",
                )
            case "not_found":
                return self._error(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    type=invalid,
                    code="model_not_found",
                )
            case "500":
                return self._error(
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    type="server_error",
                )
            case "503" | "529":
                return self._error(
                    503, "The server is overloaded or not ready yet.", type="server_error"
                )
            case "context_length":
                return self._error(
                    400,
                    f"This model's maximum context length is {self.context_window} tokens. "
                    f"However, your messages resulted in {self.context_window + input_tokens} "
                    "tokens. Please reduce the length of the messages.",
                    type=invalid,
                    param="messages",
                    code="context_length_exceeded",
                )
            case "quota":
                return self._error(
                    429,
                    "You exceeded your current quota, please check your plan and billing "
                    "details. For more information on this error, read the docs: "
                    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                    type="insufficient_quota",
                    code="insufficient_quota",
                )

    def answer(self, call: Call, answer: Answer, request_id: str) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        finish: str = answer.outcome
        if answer.outcome == "refusal":
            # Structured outputs refuse in `message.refusal`; plain text trips the filter.
            message["content"] = None
            if call.schema is not None:
                message["refusal"], finish = _REFUSAL, "stop"
            else:
                finish = "content_filter"
        tokens = answer.tokens
        body = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": tokens.input,
                "completion_tokens": tokens.output,
                "total_tokens": tokens.input + tokens.output,
                "prompt_tokens_details": {"cached_tokens": tokens.cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        return orjson.dumps(body)

    @staticmethod
    def _error(
        status: int,
        message: str,
        *,
        type: str,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        error = {"message": message, "type": type, "param": param, "code": code}
        return json_reply(status, {"error": error}, headers)


def _masked(key: str) -> str:
    """OpenAI echoes a wrong key masked, keeping only its last characters."""
    return "*" * max(len(key) - _SHOWN_KEY_CHARS, 0) + key[-_SHOWN_KEY_CHARS:]
