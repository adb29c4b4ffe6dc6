"""How long to wait before the next attempt of a failed call.

Exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter"):
a random wait in ``[0, min(cap, base * 2**(attempt-1))]``, so retries of many
items spread out instead of arriving together. When the server said how long to
wait, that wait is honoured and a little jitter is added on top of it, never
taken off. What is retried at all is decided by the error's kind
(``engine._errors.RETRYABLE_KINDS``), not here.
"""

from __future__ import annotations

import random

from engine._config import RetrySettings

_RNG = random.Random()
_SERVER_JITTER = 0.1
"""Up to 10% added to a server-given delay so the waiters do not return in lockstep."""


def backoff_delay(
    attempt: int,
    *,
    settings: RetrySettings,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    draw = (rng or _RNG).random()
    if retry_after is not None and retry_after >= 0:
        return min(retry_after * (1 + _SERVER_JITTER * draw), max(settings.cap_s, retry_after))
    ceiling = min(settings.cap_s, settings.base_s * 2.0 ** (attempt - 1))
    return ceiling * draw
