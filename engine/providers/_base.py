"""The narrow interface every provider implements, and the values that cross it.

A provider turns one ``CallRequest`` into one ``CallResult`` or raises one
``ProviderError`` whose ``kind`` the engine's retry policy understands. It never
retries, sleeps, or counts money itself: the engine owns retries, caps and rate
limits, so each provider module stays a small translation of one wire format. The values are
never changed once made (not frozen, for speed: see ``engine._results``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine._results import Usage

if TYPE_CHECKING:
    from engine.providers._batch import BatchApi


@dataclass(slots=True)
class CallRequest:
    model: str
    """The provider's own model name (``gpt-4o-mini``), without the ``provider:`` prefix."""
    prompt: str
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None
    """A JSON Schema the output must follow, sent through the provider's native mode."""
    schema_name: str = "result"
    params: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific fields passed through verbatim (``--param top_p=0.9``)."""
    reasoning_effort: str | None = None
    """``low``/``medium``/``high``, sent as each provider's own field (``engine._reasoning``)."""
    timeout_s: float = 60.0
    attempt: int = 1
    """1 for the first try of an item, 2 for its first retry, ..."""
    prompt_cache: bool = False
    """Mark the system prompt and the prompt's first ``cache_prefix`` characters (text every
    item's prompt starts with) for the provider's prompt cache, where it must be asked for."""
    cache_prefix: int = 0


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a response's headers said about the caller's limits (None where silent)."""

    requests_limit: float | None = None
    requests_remaining: float | None = None
    requests_reset_s: float | None = None
    tokens_limit: float | None = None
    tokens_remaining: float | None = None
    tokens_reset_s: float | None = None
    input_tokens_limit: float | None = None
    input_tokens_remaining: float | None = None
    output_tokens_limit: float | None = None
    output_tokens_remaining: float | None = None


@dataclass(slots=True)
class CallResult:
    text: str
    usage: Usage
    finish_reason: str | None = None
    parsed: Any = None
    """The provider's own parse of structured output, when it gives one (tool input)."""
    rate_limits: RateLimitInfo | None = None
    simulated: bool = False


class Provider(Protocol):
    """One provider for one run; ``call`` may be awaited by many workers at once."""

    name: str

    async def call(self, request: CallRequest) -> CallResult:
        """Send one request. Raises ``ProviderError`` (and nothing else) on failure, kind
        ``timeout`` once ``request.timeout_s`` has passed: a call bounds its own time (the
        HTTP providers the whole exchange, ``simulate`` by what it sleeps), since a deadline
        around each call would cost the engine a fifth of its speed at zero latency."""
        ...

    def batch_api(self) -> BatchApi | None:
        """This provider's native batch API (the same object each time), or None when it
        has none; it is closed with the provider."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Identifies(Protocol):
    """A provider whose requests can be told apart by what they send (the response cache's
    key): every HTTP provider. ``simulate`` is not one: its answers cost nothing."""

    def request_identity(self, request: CallRequest) -> bytes:
        """Canonical bytes of what ``request`` sends: provider, URL, body; never a key."""
        ...
