"""The outcome of one (item, model) pair: what the log stores and exports read.

Plain values, so the TUI, the CLI and the log writer can share one object without
copying or locking it: nobody changes one once it is made (``dataclasses.replace``
makes a changed copy). They are not ``frozen``: a frozen dataclass's ``__init__``
costs about three times as much, and several are made for every call, which at zero
latency was a fifth of the engine's time. The same holds for ``CallRequest``,
``CallResult`` and the two events made for every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine._errors import ErrorKind

Status = Literal["ok", "truncated", "failed", "skipped"]
"""``truncated``: an answer cut off at the output limit (``max_tokens``). It was paid
for and kept, but it is not a success: counted apart, exit code 1, retried by
``--retry-failed`` (with a larger ``--max-tokens``)."""


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens served from the provider's prompt cache (a subset of ``input_tokens``)."""
    unknown: bool = False
    """An answer came without a usage one could believe (missing, NaN, negative, absurd):
    its tokens are not in the counts, and it was charged all that was reserved for it."""
    reasoning_tokens: int = 0
    """Output tokens the model spent reasoning (a subset of ``output_tokens``, so priced as
    output): OpenAI's ``reasoning_tokens``, Gemini's ``thoughtsTokenCount``; Anthropic does
    not count its thinking apart."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (a subset of ``input_tokens``,
    apart from ``cached_tokens``): Anthropic bills them above plain input."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.unknown or other.unknown,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    kind: ErrorKind
    message: str


@dataclass(slots=True)
class ItemResult:
    id: str
    model: str
    """``provider:model`` as configured, e.g. ``openai:gpt-4o-mini``."""
    status: Status
    line: int
    fields: Mapping[str, Any]
    """The item's original fields, so exports need not reread the input."""
    output: str | None = None
    parsed: Any = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    attempts: int = 0
    error: ErrorInfo | None = None
    attempt_errors: tuple[ErrorInfo, ...] = ()
    """The error of every failed attempt, oldest first (the last one is ``error`` if failed)."""
    finish_reason: str | None = None
    simulated: bool = False
    prompt_override: str | None = None
    """A prompt edited by the user for a retry, which replaced the run's template."""
    unpriced: bool = False
    """The model has no known price: ``cost_usd`` is 0 because it is unknown, not free."""
    cached: bool = False
    """Answered from the response cache (``engine._cache``): no call was made, nothing paid."""
    saved_usd: float = 0.0
    """For a cached answer: what its call would have cost at this run's prices."""
    cache_saved_usd: float = 0.0
    """What the provider's prompt cache saved on this item's calls, at the model's prices
    (negative when writing the cache cost more than reading it gave back)."""
    finished_at: float | None = None
    """When the result was settled (Unix seconds; None in logs older than this field).
    The item started ``latency_ms`` before it."""
    max_tokens: int | None = None
    """The output limit of a retry that raised ``--max-tokens`` (None: the run's)."""

    @property
    def started_at(self) -> float | None:
        """When the item's first attempt started (Unix seconds), if known."""
        return None if self.finished_at is None else self.finished_at - self.latency_ms / 1000

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.id)
