"""Errors the engine raises, and the kinds a failed item can end with.

Exceptions are for conditions that stop a command (bad config, bad input file,
a broken log); an item's failure is data, an ``ErrorInfo`` in its terminal
record, never an exception that escapes the engine.

    BatchdeckError
    ├── ConfigError        the run's settings cannot work (exit 2)
    ├── InputError         the input file cannot be read at all (exit 2)
    ├── LogError
    │   ├── LogCorrupt     a bad record in the middle of a checkpoint log
    │   └── LogWriteError  a write or fsync failed: the run stops, never retries
    ├── RunNotFound        no run dir matches an id or path
    ├── RunBusy            another process is driving the run (exit 2)
    └── ProviderError      one call failed; ``kind`` says how (see ``ErrorKind``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from engine._lock import Holder
    from engine._results import Usage
    from engine.providers._base import RateLimitInfo

ErrorKind = Literal[
    "rate_limited",
    "overloaded",
    "server_error",
    "bad_response",
    "timeout",
    "connection",
    "bad_request",
    "auth",
    "not_found",
    "content_filter",
    "context_length",
    "quota",
    "invalid_output",
    "truncated",
    "invalid_input",
    "budget",
    "not_cached",
    "cancelled",
    "upstream",
    "internal",
]

RETRYABLE_KINDS: frozenset[str] = frozenset(
    {"rate_limited", "overloaded", "server_error", "timeout", "connection", "invalid_output"}
)
"""Kinds worth another attempt; everything else fails the item at once."""

FATAL_KINDS: frozenset[str] = frozenset({"auth", "not_found"})
"""Kinds that mean every call to that model will fail: the run stops early."""


class BatchdeckError(Exception):
    """Base of every error batchdeck raises on purpose; its message is one line for a user."""


class ConfigError(BatchdeckError):
    """The settings cannot work; ``field`` names the setting (``workers``, ``retries``) or
    config field at fault, when one is, so a form can mark it without reading the text."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RunBusy(BatchdeckError):
    """Another process holds the run's lock; the message names it (pid, host, since when),
    and ``holder`` says who (a ``Holder``), so an app can say what to do in its own words."""

    def __init__(self, message: str, *, holder: Holder | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class InputError(BatchdeckError):
    pass


class LogError(BatchdeckError):
    pass


class LogCorrupt(LogError):
    pass


class LogWriteError(LogError):
    pass


class RunNotFound(BatchdeckError):
    pass


class ProviderError(BatchdeckError):
    """One call failed. ``retry_after`` is the server's own wait in seconds, when it gave one."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        rate_limits: RateLimitInfo | None = None,
        usage: Usage | None = None,
        output: str | None = None,
        retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.rate_limits = rate_limits
        self.usage = usage
        """Tokens billed although the call failed (a refusal is still paid for)."""
        self.output = output
        """What the model said although the call failed, kept in the failed result."""
        self._retry = retry

    @property
    def retryable(self) -> bool:
        """Worth another attempt: the kind's rule, unless the provider knows better (an
        answer that the same request would only get again)."""
        return self.kind in RETRYABLE_KINDS if self._retry is None else self._retry

    def __repr__(self) -> str:
        return f"ProviderError({self.kind!r}, {self.message!r}, status={self.status})"
