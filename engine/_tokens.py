"""Token counts before a call: a likely figure for rate limits and the estimate, a hard bound
for money.

No tokenizer ships with batchdeck (each provider has its own, and most are not
public), so the uses get different numbers: rate-limit reservations want the
likely count (about four bytes of English per token; the difference is given
back when usage comes back), the money cap wants a count that is never exceeded
(byte-level BPE never gives more tokens than bytes), and the estimate wants the
likely count per model family (``Family``): the bytes a token covers and what
the chat template adds around the prompt. Small local models are the outliers:
their tokenizers cover fewer bytes a token and their chat templates add a
default system prompt, so four bytes a token counted half of what SmolLM2 on
llama.cpp's server reported for the sample tickets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from engine._errors import ConfigError
from engine._reasoning import framing_bytes

FRAMING_TOKENS = 16
"""Tokens a chat API adds around the messages (role markers, separators)."""


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / 4))


@dataclass(frozen=True, slots=True)
class Family:
    """How a family of models counts a prompt: ``bytes_per_token`` of text, plus
    ``per_message`` tokens around each message and ``per_call`` around the whole;
    ``counts_schema``: a structured-output schema is sent as input and counted (the
    hosted APIs put it in the prompt; local servers turn it into a grammar)."""

    name: str
    bytes_per_token: float
    per_message: int
    per_call: int
    counts_schema: bool = False

    def input_tokens(self, system: str | None, prompt: str) -> int:
        """Likely input tokens of a call with this system prompt and prompt."""
        size = len(prompt.encode()) + (len(system.encode()) if system else 0)
        messages = 2 if system else 1
        return max(1, math.ceil(size / self.bytes_per_token)) + (
            self.per_message * messages + self.per_call
        )


SIMULATED = Family("simulate", 4.0, 0, 8)
"""The ``simulate`` provider counts this way itself (so its estimate is exact)."""
HOSTED = Family("hosted", 4.0, 3, 3, counts_schema=True)
"""OpenAI's rule for chat (its cookbook: 3 tokens a message, 3 to prime the reply), for
the hosted APIs whose tokenizers are not public: about four bytes of English a token."""
LOCAL = Family("local", 3.3, 5, 28)
"""Small open models behind a local server (llama.cpp, Ollama, vLLM, LM Studio):
tokenizers of ~49k-150k tokens cover ~3.3 bytes of English a token, and their chat
templates add role markers and, without a system prompt, a default one (SmolLM2's is
~20 tokens). Set from one measurement: SmolLM2 on llama.cpp's server counted 2.1x
what four bytes a token gave for the sample tickets; this family gives 2.0x there."""


def family_of(model: str, *, local: bool) -> Family:
    """The family whose counting a ``provider:model`` follows (``local``: its preset is a
    local server)."""
    if model.startswith("simulate:"):
        return SIMULATED
    return LOCAL if local else HOSTED


STRUCTURED_OUTPUT_TOKENS = 512
"""What a provider adds to the input when output is structured (Anthropic's tool-use
system prompt is ~300-400 tokens; OpenAI's and Gemini's schema framing less)."""


def input_token_bound(*texts: str | None) -> int:
    return FRAMING_TOKENS + sum(len(t.encode()) for t in texts if t)


def request_framing(
    schema: Mapping[str, Any] | None,
    params: Mapping[str, Any],
    reasoning_effort: str | None = None,
) -> int:
    """Input tokens a request carries besides its prompts: the schema, passed-through
    fields and the reasoning effort's field (bytes, as an upper bound) and the providers'
    own structured-output framing."""
    extra = len(orjson.dumps(dict(params))) if params else 0
    extra += framing_bytes(reasoning_effort)
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
