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

from engine._errors import ConfigError

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


_OUTPUT_LIMITS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "maxOutputTokens",
    "max_new_tokens",
)
"""Passed-through fields that set the output limit (OpenAI's two, the Responses API's,
Anthropic's, Gemini's, TGI's): they would replace the one the cost cap reserves for."""
_PRICE_CHANGES = {
    "model": "use --model instead",
    "service_tier": "the price table has one price per model, the standard tier's",
    "modalities": "audio output is priced apart from text, which the table does not know",
    "audio": "audio output is priced apart from text, which the table does not know",
}
"""Passed-through fields that change the price of a token (another model, a dearer tier,
audio output), which the reservation, made at the model's listed price, cannot follow."""
_PAID_TOOLS = (
    "web_search",
    "web_fetch",
    "file_search",
    "code_interpreter",
    "code_execution",
    "image_generation",
    "google_search",
    "google_maps",
    "enterprise_web_search",
    "url_context",
    "mcp",
)
"""Tools a provider runs itself and bills per use, beside tokens (OpenAI's
``web_search_preview``, Anthropic's ``web_search_20250305``, Gemini's ``google_search``
and their kin, matched by prefix): no usage the answer reports counts those fees."""
_ANSWER_COUNTS = ("n", "best_of", "candidateCount", "candidate_count")
"""Passed-through fields that ask for several answers per call, each billed (OpenAI and
compatible servers, Gemini)."""
MAX_ANSWERS = 128


def answers_per_call(params: Mapping[str, Any]) -> int:
    """How many answers a call with ``params`` passed through may be billed for.

        A field that sets the output limit is refused (``--max-tokens`` sets it, and the
        reservation follows it), so is one that changes the price of a token (``model``,
        ``service_tier``, audio output), so is a tool the provider bills per use (web search,
    code execution); a count of answers multiplies the output reserved.
        Reasoning and thinking settings (``reasoning_effort``, ``thinking``,
        ``thinkingConfig``) are let through: OpenAI, Anthropic and Gemini count those
        tokens within the output limit. Gemini's ``generationConfig`` is looked into.
    """
    fields = dict(params)
    nested = fields.get("generationConfig")
    if isinstance(nested, Mapping):
        fields.update(nested)
    for name in _OUTPUT_LIMITS:
        if name in fields:
            raise ConfigError(
                f"--param {name} would lift the output limit the cost cap reserves for: "
                "use --max-tokens instead"
            )
    for name, advice in _PRICE_CHANGES.items():
        if name in fields:
            raise ConfigError(
                f"--param {name} would change the price the cost cap reserves at: {advice}"
            )
    tool = _paid_tool(fields)
    if tool is not None:
        raise ConfigError(
            f"--param {tool}: the provider bills each use of this tool apart from tokens, "
            "which no usage reports and the cost cap cannot bound: leave it out"
        )
    answers = 1
    for name in _ANSWER_COUNTS:
        if name in fields:
            value = fields[name]
            if type(value) is not int or not 1 <= value <= MAX_ANSWERS:
                raise ConfigError(
                    f"--param {name}={value!r}: a number of answers must be a whole number "
                    f"from 1 to {MAX_ANSWERS}"
                )
            answers = max(answers, value)
    return answers


def _paid_tool(fields: Mapping[str, Any]) -> str | None:
    """The first passed-through field that asks for a tool billed per use, if any."""
    for name in ("web_search_options", "mcp_servers"):
        if name in fields:
            return name
    tools = fields.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, Mapping):
            continue
        # OpenAI and Anthropic name a tool by its "type"; Gemini by its key ({"google_search": {}}).
        for kind in (tool.get("type"), *tool):
            if isinstance(kind, str) and _snake(kind).startswith(_PAID_TOOLS):
                return f"tools ({kind})"
    return None


def _snake(name: str) -> str:
    """``codeExecution`` and ``code-execution`` as ``code_execution``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).replace("-", "_")
