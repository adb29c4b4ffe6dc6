"""Token counts before a call: a likely figure for rate limits, a hard bound for money.

No tokenizer ships with batchdeck (each provider has its own, and most are not
public), so the two uses get two different numbers: rate-limit reservations want
the likely count (about four bytes of English per token; the difference is given
back when usage comes back), the money cap wants a count that is never exceeded
(byte-level BPE never gives more tokens than bytes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

FRAMING_TOKENS = 16
"""Tokens a chat API adds around the messages (role markers, separators)."""


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / 4))


STRUCTURED_OUTPUT_TOKENS = 512
"""What a provider adds to the input when output is structured (Anthropic's tool-use
system prompt is ~300-400 tokens; OpenAI's and Gemini's schema framing less)."""


def input_token_bound(*texts: str | None) -> int:
    return FRAMING_TOKENS + sum(len(t.encode()) for t in texts if t)


def request_framing(schema: Mapping[str, Any] | None, params: Mapping[str, Any]) -> int:
    """Input tokens a request carries besides its prompts: the schema and passed-through
    fields (bytes, as an upper bound) and the providers' own structured-output framing."""
    extra = len(orjson.dumps(dict(params))) if params else 0
    if schema is not None:
        extra += len(orjson.dumps(dict(schema))) + STRUCTURED_OUTPUT_TOKENS
    return extra
