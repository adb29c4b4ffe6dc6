"""How long to wait before the next attempt of a failed call.

Exponential backoff with full jitter (AWS's "Exponential Backoff and Jitter"):
a random wait in ``[0, min(cap, base * 2**(attempt-1))]``, so retries of many
items spread out instead of arriving together. When the server said how long to
wait, that wait is honoured and a little jitter is added on top of it, never
taken off, up to ``max_wait_s``: a server's ``Retry-After`` is not trusted
past a few minutes (``1000000000``, ``inf``), and one that is negative or not a
number is ignored (``server_wait``). The engine also cuts any wait short at a
stop or the time limit (``Control.waiting``). What is retried at all is decided by the error's kind
(``engine._errors.RETRYABLE_KINDS``), not here.
"""

from __future__ import annotations

import math
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
    wait = server_wait(retry_after, settings)
    if wait is not None:
        return min(wait * (1 + _SERVER_JITTER * draw), settings.max_wait_s)
    ceiling = min(settings.cap_s, settings.base_s * 2.0 ** (attempt - 1))
    return ceiling * draw


def server_wait(retry_after: float | None, settings: RetrySettings) -> float | None:
    """A server's requested wait within ``[0, max_wait_s]``; None if it is no number."""
    if retry_after is None or math.isnan(retry_after) or retry_after < 0:
        return None
    return min(retry_after, settings.max_wait_s)
