"""The fake server's whole configuration as one validated, immutable record.

One pydantic model serves the three ways a configuration arrives: CLI flags
(``python -m tests.fakeserver --rpm 600``), the ``--config`` JSON a fixture
passes to the subprocess, and ``POST /_config`` at runtime. Validation in one
place means a typo in a test's options is a 400 (or a CLI error) instead of an
option silently ignored, and ``ServerConfig.model_json_schema()`` documents
the ``/_config`` body for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "503",
    "529",
    "reset",
    "truncated",
    "malformed",
    "slow_body",
    "hang",
    "refusal",
    "context_length",
    "quota",
    "invalid_json_output",
)
"""Every fault the server can inject; see ``_faults`` for what each one sends."""


class LimitOverride(BaseModel):
    """Per ``provider:model`` limits that replace the global ones where set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    itpm: float | None = Field(default=None, gt=0)
    otpm: float | None = Field(default=None, gt=0)


class ServerConfig(BaseModel):
    """Everything that shapes the server's answers. ``None`` limits mean unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str | None = "test-key"
    """The one key every provider accepts; any other key is answered with a 401 (Gemini: 400).
    None: a local server started without a key, which takes any key or none."""
    listed_models: tuple[str, ...] = ("smollm2-135m-instruct", "qwen2.5-0.5b-instruct")
    """What ``GET /v1/models`` lists, as a local server lists the models it has loaded."""
    ignore_tool_choice: bool = False
    """Answer a forced Anthropic tool in plain text, as servers that ignore ``tool_choice`` do."""
    missing_models: tuple[str, ...] = ()
    """Models answered with 404, besides any model whose name starts with ``missing``."""

    latency_ms: float = Field(default=0.0, ge=0)
    """Fixed latency, or the median of a lognormal when ``latency_p99_ms`` is set."""
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    """Uniform jitter of +/- this much around ``latency_ms`` (ignored with a p99)."""
    latency_p99_ms: float | None = Field(default=None, gt=0)

    output_tokens: int = Field(default=16, ge=0)
    """Output tokens per answer (capped at the request's max tokens)."""
    output_fraction: float | None = Field(default=None, gt=0, le=1)
    """When set, output tokens are this fraction of the request's max tokens instead."""
    cached_fraction: float = Field(default=0.0, ge=0, le=1)
    """Fraction of input tokens reported as cache reads."""

    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    """Tokens/min: OpenAI and Gemini, and Anthropic's input tokens when ``itpm`` is unset."""
    itpm: float | None = Field(default=None, gt=0)
    otpm: float | None = Field(default=None, gt=0)
    """Anthropic output tokens/min, charged with the tokens actually produced."""
    burst_s: float = Field(default=60.0, gt=0)
    """Bucket capacity in seconds of refill: 60 allows a minute's worth at once, 1 enforces
    60 RPM as 1/s."""
    model_limits: Mapping[str, LimitOverride] = Field(default_factory=dict)
    """Overrides keyed ``provider:model`` (``openai:gpt-4o-mini``)."""
    openai_tpm_charge: Literal["max", "sum"] = "max"
    """OpenAI's TPM charge: ``max(input estimate, max_tokens)`` as its docs say, or the sum."""

    faults: Mapping[str, float] = Field(default_factory=dict)
    """Random fault rates by kind (``{"500": 0.05}``), drawn with ``seed``."""
    seed: int = 0
    fault_retry_after_ms: float = Field(default=1000.0, ge=0)
    """The wait injected ``429`` and ``quota`` faults announce."""
    slow_body_interval_s: float = Field(default=1.0, gt=0)
    slow_body_chunks: int = Field(default=5, ge=2)
    hang_s: float = Field(default=30.0, gt=0)
    """How long a ``hang`` fault waits before its headers."""
    hostile_body_bytes: int = Field(default=600 << 20, ge=1)
    """Size of a ``[[hostile:huge_body]]`` answer, or of a ``gzip_bomb`` once inflated."""
    hostile_retry_after: str = "1000000000"
    """The ``Retry-After`` a ``[[hostile:retry_after]]`` 429 announces, verbatim."""

    batch_queue_s: float = Field(default=0.2, ge=0)
    """How long a new batch job waits (OpenAI ``validating``, Gemini ``PENDING``) before it runs."""
    batch_s: float = Field(default=1.0, ge=0)
    """How long a batch job's requests take to run: they finish one after another, evenly."""
    batch_failure_rate: float = Field(default=0.0, ge=0, le=1)
    """The chance a batch request fails (a 500 in its provider's shape), drawn per job and
    custom_id with ``seed``."""
    batch_expire_fraction: float | None = Field(default=None, ge=0, lt=1)
    """When set, a job expires once this fraction of its requests has run (0.5: half done)."""
    batch_cancel_s: float = Field(default=0.2, ge=0)
    """How long a cancelled job stays ``cancelling`` before it is ``cancelled``."""

    @model_validator(mode="after")
    def _check(self) -> ServerConfig:
        unknown = sorted(set(self.faults) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
        if any(rate < 0 for rate in self.faults.values()) or sum(self.faults.values()) > 1:
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        if self.latency_p99_ms is not None and self.latency_p99_ms < self.latency_ms:
            raise ValueError("latency_p99_ms must be at least latency_ms (the median)")
        return self

    def updated(self, changes: Mapping[str, Any]) -> ServerConfig:
        """A new, validated config with ``changes`` applied on top of this one."""
        return ServerConfig.model_validate({**self.model_dump(), **changes})

    def limits_for(self, provider: str, model: str) -> LimitOverride:
        """The limits in force for one provider and model."""
        override = self.model_limits.get(f"{provider}:{model}")
        merged = {name: getattr(self, name) for name in LimitOverride.model_fields}
        if override is not None:
            merged.update(override.model_dump(exclude_none=True))
        return LimitOverride(**merged)
