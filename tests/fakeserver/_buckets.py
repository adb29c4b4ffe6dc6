"""Continuously refilled token buckets, one set per provider and model.

Real providers enforce per-minute limits as buckets that refill all the time
(Anthropic says so outright: 60 RPM may be enforced as 1/s), not as fixed
windows that reset on the minute. A client that paces itself correctly must
never see a 429 here, and one that bursts must see exactly the wait the bucket
implies, so the retry-after a client is told is computed from the same bucket
that refused it.

A ``Limiter`` holds one bucket per dimension (``requests``, ``tokens``,
``input_tokens``, ``output_tokens``) and admits a request only if every bucket
can pay its charge; it never charges some buckets and then refuses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SECONDS_PER_MINUTE = 60.0


class TokenBucket:
    """``per_minute`` refill, capacity ``per_minute * burst_s / 60`` (at least one unit)."""

    __slots__ = ("capacity", "last", "level", "per_minute", "rate")

    def __init__(self, per_minute: float, *, burst_s: float, now: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / SECONDS_PER_MINUTE
        self.capacity = max(self.rate * burst_s, 1.0)
        self.level = self.capacity
        self.last = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.last) * self.rate)
        self.last = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (after ``refill``)."""
        return max(0.0, (amount - self.level) / self.rate)

    def until_full(self) -> float:
        return (self.capacity - self.level) / self.rate


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request was refused: the dimension that ran out and what it would take."""

    dimension: str
    limit: float
    """The per-minute limit, as the provider would quote it."""
    used: float
    requested: float
    wait_s: float | None
    """Seconds until the request would fit; ``None`` when it never fits (larger than the bucket)."""


@dataclass(frozen=True, slots=True)
class BucketState:
    limit: float
    remaining: float
    reset_s: float
    """Seconds until the bucket is full again."""


class Limiter:
    """The buckets of one provider and model; dimensions without a limit are not tracked."""

    __slots__ = ("buckets",)

    def __init__(self, limits: Mapping[str, float | None], *, burst_s: float, now: float) -> None:
        self.buckets = {
            dim: TokenBucket(per_minute, burst_s=burst_s, now=now)
            for dim, per_minute in limits.items()
            if per_minute is not None
        }

    def acquire(self, charges: Mapping[str, float], now: float) -> Denial | None:
        """Take every charge, or nothing and say which dimension refused (the longest wait)."""
        worst: Denial | None = None
        for dim, amount in charges.items():
            bucket = self.buckets.get(dim)
            if bucket is None:
                continue
            bucket.refill(now)
            if amount <= bucket.level:
                continue
            wait = bucket.wait_for(amount) if amount <= bucket.capacity else None
            denial = Denial(dim, bucket.per_minute, bucket.capacity - bucket.level, amount, wait)
            if worst is None or _longer(denial.wait_s, worst.wait_s):
                worst = denial
        if worst is not None:
            return worst
        for dim, amount in charges.items():
            bucket = self.buckets.get(dim)
            if bucket is not None:
                bucket.level -= amount
        return None

    def state(self) -> dict[str, BucketState]:
        """Each tracked dimension's limit, remaining units and time to full, as headers say."""
        return {
            dim: BucketState(b.per_minute, math.floor(b.level), b.until_full())
            for dim, b in self.buckets.items()
        }


def _longer(a: float | None, b: float | None) -> bool:
    return a is None or (b is not None and a > b)
