"""Gemini ``generateContent`` (``POST /v1beta/models/{model}:generateContent``).

The key travels in the ``x-goog-api-key`` header, never as ``?key=``: httpx
logs request URLs at INFO, so a key in the URL would land in every log.

Generation settings live in ``generationConfig``, so a ``--param`` is put
there unless it names a top-level request field (``safetySettings``,
``tools``, ``cachedContent`` …); a ``generationConfig`` param is merged in.
Structured output is ``responseMimeType: application/json`` with the schema as
``responseJsonSchema`` (plain JSON Schema, unlike the OpenAPI subset
``responseSchema`` takes).

Gemini sends no rate-limit headers. A 429 ``RESOURCE_EXHAUSTED`` carries its
wait as ``google.rpc.RetryInfo.retryDelay`` (``"45.8s"``) in the body, and a
``google.rpc.QuotaFailure`` whose quota id names a per-day quota means no wait
will help today: ``quota``. Blocked prompts (``promptFeedback.blockReason``)
and candidates stopped for safety, recitation, blocklists, prohibited content
or personal data are ``content_filter``. Thinking tokens are billed as output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from engine._errors import ErrorKind, ProviderError
from engine._reasoning import gemini_thinking
from engine._results import Usage
from engine.providers._base import CallRequest, CallResult
from engine.providers._batch import BatchApi
from engine.providers._gemini_batch import GeminiBatch
from engine.providers._headers import parse_duration
from engine.providers._http import HttpProvider, Reply, status_kind
from engine.providers._presets import ProviderConfig
from engine.providers._usage import read_usage

_TOP_LEVEL_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "cachedContent",
        "generationConfig",
        "labels",
    }
)
_BLOCKED_FINISH = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_CONTEXT = re.compile(
    r"token count .*exceeds|exceeds the maximum number of tokens|context window", re.IGNORECASE
)


class GeminiProvider(HttpProvider):
    def __init__(self, config: ProviderConfig) -> None:
        headers = {"x-goog-api-key": config.key.reveal()} if config.key else {}
        super().__init__(config, headers=headers)

    def build(self, request: CallRequest) -> tuple[str, dict[str, Any]]:
        generation: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
        if request.temperature is not None:
            generation["temperature"] = request.temperature
        if request.stop:
            generation["stopSequences"] = list(request.stop)
        if request.schema is not None:
            generation["responseMimeType"] = "application/json"
            generation["responseJsonSchema"] = dict(request.schema)
        if request.reasoning_effort is not None:
            thinking = gemini_thinking(request.reasoning_effort, request.max_tokens)
            generation["thinkingConfig"] = thinking
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": generation,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        for name, value in request.params.items():
            if name == "generationConfig" and isinstance(value, Mapping):
                generation.update(value)
            elif name in _TOP_LEVEL_FIELDS:
                body[name] = value
            else:
                generation[name] = value
        model = quote(request.model.removeprefix("models/"), safe="-._~")
        return f"v1beta/models/{model}:generateContent", body

    def make_batch_api(self) -> BatchApi:
        return GeminiBatch(self)

    def parse(self, request: CallRequest, reply: Reply) -> CallResult:
        payload = reply.payload
        block = (payload.get("promptFeedback") or {}).get("blockReason")
        if block:
            raise self.error("content_filter", f"Gemini blocked the prompt ({block})", reply)
        candidates = payload.get("candidates") or []
        if not candidates:
            raise self.error("server_error", "Gemini answered with no candidates", reply)
        candidate = candidates[0]
        finish = candidate.get("finishReason")
        usage = _usage(payload.get("usageMetadata"))
        if finish in _BLOCKED_FINISH:
            blocked = f"Gemini blocked the output ({finish})"
            raise self.error("content_filter", blocked, reply, usage=usage)
        parts = (candidate.get("content") or {}).get("parts") or []
        return CallResult(
            text="".join(p.get("text", "") for p in parts if not p.get("thought")),
            usage=usage,
            finish_reason=_FINISH.get(finish, finish.lower()) if isinstance(finish, str) else None,
        )

    def failure(self, reply: Reply) -> ProviderError:
        payload = reply.payload
        if isinstance(payload, list) and payload:
            payload = payload[0]
        error = payload.get("error") if isinstance(payload, Mapping) else None
        error = error if isinstance(error, Mapping) else {}
        message = str(error.get("message") or reply.body_text() or "no error message")
        details = [d for d in error.get("details") or () if isinstance(d, Mapping)]
        kind: ErrorKind = status_kind(reply.status)
        if kind == "rate_limited" or error.get("status") == "RESOURCE_EXHAUSTED":
            if _per_day_quota(details):
                return self.error("quota", message, reply)
            return self.error("rate_limited", message, reply, wait_s=_retry_delay(details))
        if kind == "bad_request" and _key_invalid(details, message):
            kind = "auth"
        elif kind == "bad_request" and _CONTEXT.search(message):
            kind = "context_length"
        return self.error(kind, message, reply)


def _usage(usage: Any) -> Usage:
    # Gemini leaves out a count that is zero (no candidate, no thoughts): only the
    # prompt's count must be there.
    return read_usage(
        usage,
        input=("promptTokenCount",),
        output=("candidatesTokenCount", "thoughtsTokenCount"),
        cached=("cachedContentTokenCount",),
        reasoning="thoughtsTokenCount",
        required=("promptTokenCount",),
    )


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    for detail in details:
        if detail.get("@type") == _RETRY_INFO and isinstance(detail.get("retryDelay"), str):
            return parse_duration(detail["retryDelay"])
    return None


def _per_day_quota(details: list[Mapping[str, Any]]) -> bool:
    return any(
        "PerDay" in str(violation.get("quotaId", ""))
        for detail in details
        if detail.get("@type") == _QUOTA_FAILURE
        for violation in detail.get("violations") or ()
        if isinstance(violation, Mapping)
    )


def _key_invalid(details: list[Mapping[str, Any]], message: str) -> bool:
    reasons = {d.get("reason") for d in details if d.get("@type") == _ERROR_INFO}
    return "API_KEY_INVALID" in reasons or "API key not valid" in message
