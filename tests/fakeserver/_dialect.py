"""What every provider dialect must translate, and the helpers they share.

The request pipeline (``_app``) is the same for every provider: check the key,
parse, check the model, charge the buckets, wait, answer or fail. Only the wire
format differs, so each provider is a ``Dialect`` that turns a request into a
neutral ``Call`` and neutral outcomes (``Answer``, an error kind, a ``Denial``)
back into that provider's exact bytes and headers. Adding a provider means
writing one dialect, never touching the pipeline.
"""

from __future__ import annotations

import math
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import orjson

from tests.fakeserver._buckets import BucketState, Denial
from tests.fakeserver._config import LimitOverride, ServerConfig
from tests.fakeserver._schema import instance_of, invalid_instance_of

BYTES_PER_TOKEN = 4
"""The usual rule of thumb for English text; clients estimate the same way."""

ErrorKind = Literal[
    "bad_request",
    "missing_key",
    "bad_key",
    "not_found",
    "500",
    "503",
    "529",
    "context_length",
    "quota",
]
Outcome = Literal["stop", "length", "refusal"]
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


class BadRequest(Exception):
    """The request is malformed; answered with the provider's 400."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Call:
    """A request reduced to what the fake server acts on."""

    model: str
    text: str
    """All prompt text (system and messages): the token estimate and fault markers use it."""
    max_tokens: int | None
    schema: Any = None
    """The JSON Schema the output must follow, when one was given."""
    json_mode: bool = False
    """JSON output was asked for (with or without a schema)."""
    tool: str | None = None
    """Anthropic: the forced tool to answer with a ``tool_use`` block."""
    cacheable: str = ""
    """The prompt's start the provider caches: Anthropic's text up to its last
    ``cache_control`` mark, OpenAI's and Gemini's system prompt (they cache on their own)."""
    cache_write_billed: bool = False
    """Anthropic: writing ``cacheable`` to the cache is billed (at 1.25x input)."""


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int
    """All input tokens, cached ones included."""
    cached: int
    output: int
    cache_write: int = 0
    """Input tokens written to the prompt cache and billed as such (Anthropic)."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    value: Any
    """The structured value (``None`` for free text)."""
    tokens: Tokens
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Dialect(ABC):
    """One provider's wire format."""

    name: ClassVar[str]
    context_window: ClassVar[int]
    """The context length quoted in this provider's context-length error."""

    @abstractmethod
    def key(self, headers: Mapping[str, str]) -> str | None:
        """The API key the request carries, if any."""

    @abstractmethod
    def parse(self, headers: Mapping[str, str], payload: Any, path_model: str | None) -> Call:
        """The request as a ``Call``; raises ``BadRequest``."""

    @abstractmethod
    def limits(self, limits: LimitOverride) -> dict[str, float | None]:
        """Per-minute limits by bucket dimension."""

    @abstractmethod
    def charges(self, call: Call, tokens: Tokens, config: ServerConfig) -> dict[str, float]:
        """What one call costs each bucket."""

    @abstractmethod
    def limit_headers(self, state: Mapping[str, BucketState], now: float) -> dict[str, str]:
        """The rate-limit headers every response carries (``now`` is Unix time)."""

    @abstractmethod
    def rate_limited(self, model: str, denial: Denial) -> Reply:
        """The 429 for a refused request, with the provider's retry signal."""

    @abstractmethod
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
        """Any other error, in this provider's shape."""

    @abstractmethod
    def answer(self, call: Call, answer: Answer, request_id: str) -> bytes:
        """The 200 body."""


def answer_for(call: Call, tokens: Tokens, fault: str | None) -> Answer:
    """The answer to ``call``: a schema's instance, JSON, or text; ``fault`` may spoil it."""
    invalid = fault == "invalid_json_output"
    value = None
    if call.schema is not None:
        value = invalid_instance_of(call.schema) if invalid else instance_of(call.schema)
    elif call.json_mode:
        value = [] if invalid else {}
    text = orjson.dumps(value).decode() if call.json_mode else reply_text(call.text, tokens.output)
    outcome: Outcome
    if fault == "refusal":
        outcome = "refusal"
    elif call.max_tokens is not None and tokens.output >= call.max_tokens:
        outcome = "length"
    else:
        outcome = "stop"
    return Answer(text, value, tokens, outcome)


def object_at(payload: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    """The JSON object under the first of ``names`` present (``{}`` if none); 400 if not one."""
    name = next((n for n in names if payload.get(n) is not None), None)
    value = {} if name is None else payload[name]
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid type for '{name}': expected an object.", param=name)
    return value


def count_at(payload: Mapping[str, Any], *names: str) -> int | None:
    """The token count under the first of ``names`` present; 400 if not a whole number."""
    name = next((n for n in names if payload.get(n) is not None), None)
    value = None if name is None else payload[name]
    if value is not None and (type(value) is not int or value < 0):
        raise BadRequest(f"Invalid value for '{name}': expected an integer >= 0.", param=name)
    return value


def estimate_tokens(text: str) -> int:
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def texts_of(content: Any) -> list[str]:
    """The text of a message content: a string, or a list of parts carrying ``text``."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


_WORDS = (
    "the quick brown fox jumps over a lazy dog while batch items stream through "
    "the fake provider and every reply stays the same for the same prompt "
).split()
_FILLER = " ".join(_WORDS * 512)
_STARTS = len(_FILLER) // 2


def reply_text(prompt: str, output_tokens: int) -> str:
    """A deterministic reply of about ``output_tokens`` tokens (at most ~8k) that depends on
    the prompt."""
    digest = zlib.crc32(prompt.encode())
    head = f"[{digest:08x}]"
    start = digest % _STARTS
    size = max(output_tokens * BYTES_PER_TOKEN - len(head), 0)
    return head + _FILLER[start : start + size]


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, orjson.dumps(body), {**JSON_HEADERS, **(headers or {})})


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` spelling, as OpenAI's reset headers use (``12ms``, ``6m0s``)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    prefix = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        prefix += f"{int(minutes)}m"
    return f"{prefix}{decimal_seconds(secs)}"


def decimal_seconds(seconds: float) -> str:
    """``1.5s``, ``45s``: millisecond precision, trailing zeros dropped (protobuf Duration)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def rfc3339_after(now: float, seconds: float) -> str:
    """The RFC 3339 instant ``seconds`` after Unix time ``now``, rounded up to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(now + seconds)))


def retry_after_s(wait_s: float) -> str:
    """A ``retry-after`` header value: whole seconds, rounded up, at least 1 when waiting."""
    return str(math.ceil(wait_s))
