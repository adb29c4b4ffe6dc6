"""OpenAI Chat Completions, and every server that speaks it (the presets in ``_presets``).

One module serves OpenAI and the compatible servers because they share the
wire format; what differs is data (``Preset``): the base URL, the key, and the
name of the output cap (OpenAI wants ``max_completion_tokens``, which its
reasoning models require; the compatible servers know ``max_tokens``). The
error reader accepts the shapes those servers actually send: OpenAI's
``{"error": {"message", "type", "code"}}``, vLLM's top-level
``{"message", "type", "code"}``, a bare ``{"error": "..."}`` and a numeric
``code`` (OpenRouter, llama.cpp).

Structured output is ``response_format: json_schema``, ``strict`` only when the
schema already satisfies strict mode (see ``_schema``). A refusal
(``message.refusal``) and ``finish_reason: content_filter`` fail the call with
kind ``content_filter``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine._errors import ErrorKind, ProviderError
from engine._reasoning import openai_fields
from engine._results import Usage
from engine.providers._base import CallRequest, CallResult, RateLimitInfo
from engine.providers._batch import BatchApi
from engine.providers._headers import header_float, parse_duration
from engine.providers._http import HttpProvider, Reply, status_kind
from engine.providers._openai_batch import OpenAIBatch
from engine.providers._presets import ProviderConfig
from engine.providers._schema import strict_compatible, wire_name
from engine.providers._usage import read_usage

_CONTEXT = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|reduce the length", re.IGNORECASE
)
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


class OpenAIProvider(HttpProvider):
    models_path = "models"

    def __init__(self, config: ProviderConfig) -> None:
        headers = {"authorization": f"Bearer {config.key.reveal()}"} if config.key else {}
        super().__init__(config, headers=headers)
        preset, url = config.preset, (config.base_url or "").rstrip("/")
        if preset is not None and url == (preset.base_url or "").rstrip("/"):
            self._tokens_field = preset.max_tokens_field
        else:  # another base URL is a compatible server, which knows only ``max_tokens``
            self._tokens_field = "max_tokens"

    def build(self, request: CallRequest) -> tuple[str, dict[str, Any]]:
        messages = [{"role": "user", "content": request.prompt}]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            self._tokens_field: request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        if request.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": wire_name(request.schema_name),
                    "schema": dict(request.schema),
                    "strict": strict_compatible(request.schema),
                },
            }
        if request.reasoning_effort is not None:
            body.update(openai_fields(request.reasoning_effort))
        body.update(request.params)
        return "chat/completions", body

    def make_batch_api(self) -> BatchApi:
        return OpenAIBatch(self)

    def parse(self, request: CallRequest, reply: Reply) -> CallResult:
        choice = reply.payload["choices"][0]
        message = choice["message"]
        finish = choice.get("finish_reason")
        usage = _usage(reply.payload.get("usage"))
        if message.get("refusal"):
            refused = f"the model refused: {message['refusal']}"
            raise self.error("content_filter", refused, reply, usage=usage)
        if finish == "content_filter":
            withheld = f"{self.name} withheld the output (content filter)"
            raise self.error("content_filter", withheld, reply, usage=usage)
        return CallResult(
            text=message.get("content") or "",
            usage=usage,
            finish_reason=finish,
            rate_limits=self.rate_limits(reply.headers),
        )

    def failure(self, reply: Reply) -> ProviderError:
        message, code = _error_fields(reply.payload)
        message = message or reply.body_text() or "no error message"
        kind: ErrorKind = status_kind(reply.status)
        if code & _QUOTA_CODES:
            kind = "quota"
        elif code & _FILTER_CODES:
            kind = "content_filter"
        elif kind == "bad_request" and (_CONTEXT.search(message) or _mentions_context(code)):
            kind = "context_length"
        return self.error(kind, message, reply)

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        info = RateLimitInfo(
            requests_limit=header_float(headers, "x-ratelimit-limit-requests"),
            requests_remaining=header_float(headers, "x-ratelimit-remaining-requests"),
            requests_reset_s=_duration(headers.get("x-ratelimit-reset-requests")),
            tokens_limit=header_float(headers, "x-ratelimit-limit-tokens"),
            tokens_remaining=header_float(headers, "x-ratelimit-remaining-tokens"),
            tokens_reset_s=_duration(headers.get("x-ratelimit-reset-tokens")),
        )
        return None if info == RateLimitInfo() else info


def _duration(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def _mentions_context(codes: frozenset[str]) -> bool:
    return any("context" in code for code in codes)


def _usage(usage: Any) -> Usage:
    if isinstance(usage, Mapping):  # the cached and reasoning counts sit one level down
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
        reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
        usage = {
            **usage,
            "cached": cached or usage.get("prompt_cache_hit_tokens"),
            "reasoning": reasoning,
        }
    return read_usage(
        usage,
        input=("prompt_tokens",),
        output=("completion_tokens",),
        cached=("cached",),
        reasoning="reasoning",
        required=("prompt_tokens", "completion_tokens"),
    )


def _detail(usage: Mapping[str, Any], details: str, name: str) -> Any:
    found = usage.get(details)
    return found.get(name) if isinstance(found, Mapping) else None


def _error_fields(payload: Any) -> tuple[str, frozenset[str]]:
    """The message and the ``code``/``type`` words of an error body, whatever its shape."""
    if not isinstance(payload, Mapping):
        return "", frozenset()
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, frozenset()
    if not isinstance(error, Mapping):
        return "", frozenset()
    message = error.get("message") or payload.get("detail") or ""
    codes = frozenset(str(error[k]) for k in ("code", "type") if error.get(k) is not None)
    return str(message), codes
