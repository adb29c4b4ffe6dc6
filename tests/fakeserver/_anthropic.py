"""Anthropic Messages (``POST /v1/messages``) on the wire.

Shapes follow the Anthropic API spec (``Message``, ``ErrorResponse`` with its
``request_id``) and the real API's behaviour: ``x-api-key`` and
``anthropic-version`` are both required; requests, input tokens and output
tokens are separate buckets, reported in ``anthropic-ratelimit-*`` headers whose
``reset`` is an RFC 3339 instant; the ``tokens`` headers describe the most
restrictive token bucket. Output tokens are charged with the tokens the answer
produces, not ``max_tokens``; cache reads do not count against input tokens.
Prompt caching works as the API's: a prefix up to a ``cache_control`` mark, long
enough to cache, is reported as ``cache_creation_input_tokens`` the first time
and as ``cache_read_input_tokens`` after (per model; OpenAI and Gemini cache a
long system prompt on their own, and report only the reads).
Structured output comes back as a ``tool_use`` block when a tool is forced, or
as JSON text with ``output_config.format`` (or the beta ``output_format``).
A spend cap is the real 400 "You have reached your specified API usage limits".
"""

from __future__ import annotations

import itertools
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
    json_reply,
    object_at,
    retry_after_s,
    rfc3339_after,
    texts_of,
)

_HEADER_NAMES = {
    "requests": "requests",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
}
_UNITS = {
    "requests": "requests",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal"}
_ERROR_IDS = itertools.count(1)


class AnthropicDialect(Dialect):
    name = "anthropic"
    context_window = 200_000

    def key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or None

    def parse(self, headers: Mapping[str, str], payload: Any, path_model: str | None) -> Call:
        if "anthropic-version" not in headers:
            raise BadRequest("anthropic-version: header is required")
        for required in ("model", "messages", "max_tokens"):
            if required not in payload:
                raise BadRequest(f"{required}: Field required")
        if not isinstance(payload["messages"], list):
            raise BadRequest("messages: Input should be a valid list")
        texts = texts_of(payload.get("system"))
        for message in payload["messages"]:
            if isinstance(message, dict):
                texts += texts_of(message.get("content"))
        schema, tool = None, _forced_tool(payload)
        if tool is not None:
            schema = tool.get("input_schema", {})
        output_format = object_at(object_at(payload, "output_config"), "format") or object_at(
            payload, "output_format"
        )
        if tool is None and output_format.get("type") == "json_schema":
            schema = output_format.get("schema", {})
        return Call(
            str(payload["model"]),
            "\n".join(texts),
            count_at(payload, "max_tokens"),
            schema=schema,
            json_mode=schema is not None,
            tool=None if tool is None else tool.get("name"),
            cacheable=_cacheable(payload),
            cache_write_billed=True,
        )

    def limits(self, limits: LimitOverride) -> dict[str, float | None]:
        return {
            "requests": limits.rpm,
            "input_tokens": limits.itpm or limits.tpm,
            "output_tokens": limits.otpm,
        }

    def charges(self, call: Call, tokens: Tokens, config: ServerConfig) -> dict[str, float]:
        return {
            "requests": 1,
            "input_tokens": tokens.input - tokens.cached,
            "output_tokens": tokens.output,
        }

    def limit_headers(self, state: Mapping[str, BucketState], now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for dim, bucket in state.items():
            _put(headers, _HEADER_NAMES[dim], bucket, now)
        token_buckets = [state[d] for d in ("input_tokens", "output_tokens") if d in state]
        if token_buckets:
            _put(headers, "tokens", min(token_buckets, key=lambda b: b.remaining), now)
        return headers

    def rate_limited(self, model: str, denial: Denial) -> Reply:
        message = (
            "This request would exceed the rate limit for your organization (fake-org) of "
            f"{denial.limit:,.0f} {_UNITS[denial.dimension]} per minute. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
            "current usage. Please reduce the prompt length or the maximum tokens requested, "
            "or try again later."
        )
        headers = {} if denial.wait_s is None else {"retry-after": retry_after_s(denial.wait_s)}
        return _error(429, "rate_limit_error", message, headers)

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
                return _error(400, "invalid_request_error", detail)
            case "missing_key":
                return _error(401, "authentication_error", "x-api-key header is required")
            case "bad_key":
                return _error(401, "authentication_error", "invalid x-api-key")
            case "not_found":
                return _error(404, "not_found_error", f"model: {model}")
            case "500":
                return _error(500, "api_error", "Internal server error")
            case "503":
                return _error(503, "api_error", "Service unavailable")
            case "529":
                return _error(529, "overloaded_error", "Overloaded")
            case "context_length":
                return _error(
                    400,
                    "invalid_request_error",
                    f"prompt is too long: {self.context_window + input_tokens} tokens > "
                    f"{self.context_window} maximum",
                )
            case "quota":
                return _error(
                    400,
                    "invalid_request_error",
                    "You have reached your specified API usage limits. You will regain access "
                    "on 2099-01-01 at 00:00 UTC.",
                )

    def answer(self, call: Call, answer: Answer, request_id: str) -> bytes:
        content: list[dict[str, Any]]
        stop = _STOP[answer.outcome]
        if answer.outcome == "refusal":
            content = []
        elif call.tool is not None:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{request_id}",
                    "name": call.tool,
                    "input": answer.value,
                }
            ]
            stop = "tool_use" if answer.outcome == "stop" else stop
        else:
            content = [{"type": "text", "text": answer.text}]
        tokens = answer.tokens
        return orjson.dumps(
            {
                "id": f"msg_{request_id}",
                "type": "message",
                "role": "assistant",
                "model": call.model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": tokens.input - tokens.cached - tokens.cache_write,
                    "cache_creation_input_tokens": tokens.cache_write,
                    "cache_read_input_tokens": tokens.cached,
                    "output_tokens": tokens.output,
                    "service_tier": "standard",
                },
            }
        )


def _cacheable(payload: Mapping[str, Any]) -> str:
    """The text up to the last block marked ``cache_control`` (system first, then messages)."""
    blocks: list[tuple[str, bool]] = []
    contents = [m.get("content") for m in payload["messages"] if isinstance(m, dict)]
    for content in (payload.get("system"), *contents):
        if isinstance(content, str):
            blocks.append((content, False))
        elif isinstance(content, list):
            blocks += [
                (b["text"], "cache_control" in b)
                for b in content
                if isinstance(b, dict) and isinstance(b.get("text"), str)
            ]
    marked = [i for i, (_, mark) in enumerate(blocks) if mark]
    return "\n".join(text for text, _ in blocks[: marked[-1] + 1]) if marked else ""


def _forced_tool(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tool ``tool_choice`` forces (``{"type": "tool"}`` or ``{"type": "any"}``)."""
    tools = [t for t in payload.get("tools") or [] if isinstance(t, dict)]
    choice = object_at(payload, "tool_choice")
    if choice.get("type") == "tool":
        for tool in tools:
            if tool.get("name") == choice.get("name"):
                return tool
        raise BadRequest(f"tool_choice: tool {choice.get('name')!r} not found in tools")
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def _put(headers: dict[str, str], name: str, bucket: BucketState, now: float) -> None:
    prefix = f"anthropic-ratelimit-{name}"
    headers[f"{prefix}-limit"] = str(int(bucket.limit))
    headers[f"{prefix}-remaining"] = str(int(bucket.remaining))
    headers[f"{prefix}-reset"] = rfc3339_after(now, bucket.reset_s)


def _error(status: int, type: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    body = {
        "type": "error",
        "error": {"type": type, "message": message},
        "request_id": f"req_fake{next(_ERROR_IDS):016d}",
    }
    return json_reply(status, body, headers)
