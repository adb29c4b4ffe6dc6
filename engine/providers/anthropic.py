"""Anthropic Messages (``POST /v1/messages``, ``anthropic-version: 2023-06-01``).

Structured output goes through tool use, which every Claude model supports:
one tool whose ``input_schema`` is the user's schema, forced with
``tool_choice: {"type": "tool"}``. The tool call's ``input`` is the parsed
result and its JSON the text. A server that ignores ``tool_choice`` (a local
server speaking the Messages API) answers in text instead: that fails
``invalid_output`` saying the model did not call the tool, keeps the text, and
is not retried, since the same request would get the same answer. Tool input
must be an object, so a schema whose root is not one is wrapped in
``{"value": ...}`` on the way out (its ``$defs`` lifted to the wrapper, where
``#/$defs/...`` references still find them) and unwrapped on the way back.

Usage: Anthropic's ``input_tokens`` excludes prompt-cache reads and writes, so
the three are summed into ``Usage.input_tokens``, the reads reported as
``cached_tokens`` and the writes as ``cache_write_tokens`` (both subsets of the
input, priced at their own rates).

Prompt caching (``--prompt-cache auto``): the system prompt, and the start of the
prompt that every item shares (the template's text before its first
placeholder), are sent as text blocks marked ``cache_control: ephemeral`` when
they are long enough for Anthropic to cache them; a later call with the same
start reads it back at a tenth of the input price, after a first write at 1.25x.

Errors: 529 is ``overloaded``; a 429 is a rate limit unless it carries no
``retry-after`` and talks about spend or credit (a spend cap, which waiting
does not lift: ``quota``); ``billing_error`` and a too-low credit balance are
``quota`` too; "prompt is too long" is ``context_length``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from engine._errors import ErrorKind, ProviderError
from engine._reasoning import anthropic_fields
from engine._results import Usage
from engine._tokens import estimate_tokens
from engine.providers._anthropic_batch import AnthropicBatch
from engine.providers._base import CallRequest, CallResult, RateLimitInfo
from engine.providers._batch import BatchApi
from engine.providers._headers import header_float, seconds_until
from engine.providers._http import HttpProvider, Reply, status_kind
from engine.providers._presets import ProviderConfig
from engine.providers._schema import is_object_schema, wire_name
from engine.providers._usage import read_usage

API_VERSION = "2023-06-01"

CACHE_MIN_TOKENS = 1024
"""The shortest prefix Anthropic caches (Sonnet and Opus; Haiku wants more, and ignores
a shorter mark without complaint)."""
_WRAP_KEY = "value"
_TOOL_MAX_NAME = 128
_TOOL_DESCRIPTION = "Record the answer. Call this exactly once with the complete answer."
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length"}
_SPEND = re.compile(r"usage limit|spend|credit|billing|extra usage|quota", re.IGNORECASE)
_CONTEXT = re.compile(r"prompt is too long|context (limit|window)", re.IGNORECASE)


class AnthropicProvider(HttpProvider):
    models_path = "v1/models"

    def __init__(self, config: ProviderConfig) -> None:
        headers = {"anthropic-version": API_VERSION}
        if config.key:
            headers["x-api-key"] = config.key.reveal()
        super().__init__(config, headers=headers)

    def build(self, request: CallRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": _content(request)}],
        }
        if request.system:
            body["system"] = request.system
            if request.prompt_cache and estimate_tokens(request.system) >= CACHE_MIN_TOKENS:
                body["system"] = [_text(request.system, cached=True)]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.schema is not None:
            name = wire_name(request.schema_name, max_length=_TOOL_MAX_NAME)
            body["tools"] = [
                {
                    "name": name,
                    "description": _TOOL_DESCRIPTION,
                    "input_schema": _tool_schema(request.schema),
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": name}
        if request.reasoning_effort is not None:
            body.update(anthropic_fields(request.reasoning_effort, request.max_tokens))
        body.update(request.params)
        return "v1/messages", body

    def make_batch_api(self) -> BatchApi:
        return AnthropicBatch(self)

    def parse(self, request: CallRequest, reply: Reply) -> CallResult:
        payload = reply.payload
        blocks = payload["content"]
        text = "".join(block["text"] for block in blocks if block.get("type") == "text")
        stop = payload.get("stop_reason")
        usage = _usage(payload.get("usage"))
        if stop == "refusal":
            said = f": {text}" if text else ""
            refused = f"the model refused (stop_reason refusal){said}"
            raise self.error("content_filter", refused, reply, usage=usage)
        parsed = None
        if request.schema is not None:
            name = wire_name(request.schema_name, max_length=_TOOL_MAX_NAME)
            tool = next(
                (b for b in blocks if b.get("type") == "tool_use" and b.get("name") == name), None
            )
            if tool is None:
                raise self.error(
                    "invalid_output",
                    f"the model did not call the tool {name} (the server may ignore "
                    "tool_choice): the same request would not do better",
                    reply,
                    usage=usage,
                    output=text,
                    retry=False,
                )
            parsed = tool["input"]
            if not is_object_schema(request.schema):
                parsed = parsed.get(_WRAP_KEY)
            text = orjson.dumps(parsed).decode()
        return CallResult(
            text=text,
            usage=usage,
            finish_reason=_FINISH.get(stop, stop) if isinstance(stop, str) else None,
            parsed=parsed,
            rate_limits=self.rate_limits(reply.headers),
        )

    def failure(self, reply: Reply) -> ProviderError:
        error = reply.payload.get("error") if isinstance(reply.payload, Mapping) else None
        error = error if isinstance(error, Mapping) else {}
        message = str(error.get("message") or reply.body_text() or "no error message")
        error_type = error.get("type")
        kind: ErrorKind = status_kind(reply.status)
        if kind == "rate_limited" or error_type == "rate_limit_error":
            spend_cap = "retry-after" not in reply.headers and _SPEND.search(message)
            kind = "quota" if spend_cap else "rate_limited"
        elif error_type == "billing_error" or (kind == "bad_request" and _SPEND.search(message)):
            kind = "quota"
        elif error_type == "overloaded_error":
            kind = "overloaded"
        elif kind == "bad_request" and _CONTEXT.search(message):
            kind = "context_length"
        return self.error(kind, message, reply)

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        def number(name: str) -> float | None:
            return header_float(headers, f"anthropic-ratelimit-{name}")

        def reset(name: str) -> float | None:
            value = headers.get(f"anthropic-ratelimit-{name}-reset")
            return None if value is None else seconds_until(value)

        info = RateLimitInfo(
            requests_limit=number("requests-limit"),
            requests_remaining=number("requests-remaining"),
            requests_reset_s=reset("requests"),
            tokens_limit=number("tokens-limit"),
            tokens_remaining=number("tokens-remaining"),
            tokens_reset_s=reset("tokens"),
            input_tokens_limit=number("input-tokens-limit"),
            input_tokens_remaining=number("input-tokens-remaining"),
            output_tokens_limit=number("output-tokens-limit"),
            output_tokens_remaining=number("output-tokens-remaining"),
        )
        return None if info == RateLimitInfo() else info


def _content(request: CallRequest) -> str | list[dict[str, Any]]:
    """The prompt, its fixed start marked for the prompt cache when the system prompt and it
    are long enough to be cached (Anthropic caches nothing shorter, and says nothing)."""
    prefix, rest = request.prompt[: request.cache_prefix], request.prompt[request.cache_prefix :]
    if not (request.prompt_cache and prefix and rest):
        return request.prompt
    if estimate_tokens((request.system or "") + prefix) < CACHE_MIN_TOKENS:
        return request.prompt
    return [_text(prefix, cached=True), _text(rest)]


def _text(text: str, *, cached: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cached:
        block["cache_control"] = {"type": "ephemeral"}
    return block


def _tool_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    if is_object_schema(schema):
        return dict(schema)
    inner = dict(schema)
    definitions: dict[str, Any] = {
        key: inner.pop(key) for key in ("$defs", "definitions") if key in inner
    }
    return {
        "type": "object",
        "properties": {_WRAP_KEY: inner},
        "required": [_WRAP_KEY],
        **definitions,
    }


def _usage(usage: Any) -> Usage:
    return read_usage(
        usage,
        input=("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"),
        output=("output_tokens",),
        cached=("cache_read_input_tokens",),
        cache_write="cache_creation_input_tokens",
        required=("input_tokens", "output_tokens"),
    )
