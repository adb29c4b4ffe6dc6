"""Per-model rate limits that pace calls at the provider's limit and not past it.

Each model gets continuously refilled token buckets (requests/min and tokens/min;
Anthropic counts input and output tokens/min separately), filled from ``--rpm``/
``--tpm`` or from the limits the first responses' headers announce. A bucket holds
at most ``burst_s`` seconds of refill (``--burst``, 1 s by default), not a minute:
providers enforce a per-minute limit over sub-minute windows (Anthropic: "60 RPM
may be enforced as 1 request per second"), so a minute's worth sent at once is
mostly answered 429. A bucket starts a tenth full, and until a model's first call
has settled it has that one call in flight: the first wave of a run cannot burst
past limits that only the first answer's headers announce.

A call reserves its likely tokens up front (input estimate + ``max_tokens``) and
hands back the difference when its real usage arrives; a call bigger than the
bucket waits for a full one and leaves the bucket in debt, so the rate holds for
any size. After each response the local level is lowered (never raised) to the
server's ``remaining`` figure. Waiting calls queue first come, first served: only
the head of the queue sleeps, so hundreds of workers cost one timer, not hundreds.

On a 429/529 the model waits what the server said and its refill rate is cut
multiplicatively (x0.7), then regrows a little with every success, as AWS's
adaptive retry mode does. Where no limit is known at all (Gemini sends no
headers), the same cut applies to the number of calls in flight instead. Only
the model that was throttled slows; each model has its own limiter.

Why not ``aiolimiter`` (it was declared for this and is no longer a dependency):
an ``AsyncLimiter``'s rate and level are fixed when it is built, and only private
attributes change them, while this limiter changes its rate on every 429 and every
success after one, learns its limit from the first answer and lowers its level to
each answer's ``remaining``; rebuilding a limiter for each change strands the
calls already waiting on the old one at the old rate. It cannot hand back unused
tokens, it serves the smallest waiting request first (a large reservation can
starve), and it reads the asyncio loop's clock, so none of this could be tested on
a fake clock. What it does well, one timer for all waiters, the queue here does too.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from engine._errors import ProviderError
from engine._events import RateLimitUpdated
from engine.providers._base import CallResult, RateLimitInfo

DEFAULT_BURST_S = 1.0
"""Seconds of refill a bucket holds: what a sub-minute window lets through at once."""
START_FILL = 0.1
"""A new bucket's level, as a share of what it holds."""
CUT = 0.7
"""Rate multiplier after a 429/529."""
REGROW = 0.05
"""Fraction of the gap to full rate won back per successful call."""
FLOOR = 0.05
DEFAULT_BACKOFF_S = 1.0
"""Wait after a 429 that carried no retry-after."""
PUBLISH_EVERY_S = 0.25
WINDOW_S = 60.0


@dataclass(slots=True)
class Bucket:
    """``limit`` units per minute, refilled continuously, holding ``burst_s`` seconds of
    refill (no limit: never waits). The level goes below zero when a call bigger than
    the bucket is let through: that debt is paid back before the next call goes."""

    limit: float | None = None
    burst_s: float = DEFAULT_BURST_S
    level: float = 0.0
    updated: float = 0.0
    fixed: bool = False
    """Set by the user (``--rpm``/``--tpm``): headers never change the limit."""

    @classmethod
    def starting(cls, limit: float | None, burst_s: float, now: float) -> Bucket:
        """A bucket the user gave a limit for (None: one that learns it), a tenth full."""
        bucket = cls(limit, burst_s, 0.0, now, fixed=limit is not None)
        bucket.level = START_FILL * bucket.capacity
        return bucket

    @property
    def capacity(self) -> float:
        return 0.0 if self.limit is None else self.limit * self.burst_s / 60.0

    def refill(self, now: float, factor: float) -> None:
        if self.limit is not None:
            rate = self.limit * factor / 60.0
            self.level = min(self.capacity, self.level + (now - self.updated) * rate)
        self.updated = now

    def wait_s(self, amount: float, factor: float) -> float:
        """Seconds until ``amount`` fits (a call bigger than the bucket: until it is full)."""
        if self.limit is None:
            return 0.0
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need / (self.limit * factor / 60.0)

    def take(self, amount: float) -> None:
        if self.limit is not None:
            self.level -= amount

    def give_back(self, amount: float) -> None:
        if self.limit is not None and amount > 0:
            self.level = min(self.capacity, self.level + amount)

    def learn(self, limit: float | None, remaining: float | None, now: float) -> None:
        if limit is not None and limit > 0 and not self.fixed and self.limit != limit:
            first = self.limit is None
            self.limit = limit
            if first:
                self.level, self.updated = START_FILL * self.capacity, now
        if remaining is not None and self.limit is not None and remaining < self.level:
            self.level = max(remaining, 0.0)  # a server saying "-1e9 left" must not stall a run


@dataclass(frozen=True, slots=True)
class Ticket:
    requests: float
    tokens: float
    input_tokens: float
    output_tokens: float
    sent_at: float


class RateLimiter:
    def __init__(
        self,
        model: str,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_s: float = DEFAULT_BURST_S,
        max_in_flight: int = 1 << 20,
        charge_max: bool = False,
        publish: Callable[[RateLimitUpdated], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.charge_max = charge_max
        now = clock()
        self.requests = Bucket.starting(rpm, burst_s, now)
        self.tokens = Bucket.starting(tpm, burst_s, now)
        self.input_tokens = Bucket.starting(None, burst_s, now)
        self.output_tokens = Bucket.starting(None, burst_s, now)
        self._buckets = (self.requests, self.tokens, self.input_tokens, self.output_tokens)
        self.factor = 1.0
        self.blocked_until = 0.0
        self.throttled = 0
        self.in_flight = 0
        self.max_in_flight = max_in_flight
        self._concurrency_cap = float(max_in_flight)
        self._latency_s = 0.0
        self._window: deque[tuple[float, float]] = deque()
        self._publish = publish
        self._published_at = -math.inf
        self._clock = clock
        self._freed = anyio.Event()
        self._settled = 0
        self._queue = anyio.Lock()
        """Held by the call at the head of the queue while it waits for room."""

    async def acquire(self, input_tokens: int, max_tokens: int) -> Ticket:
        """Wait until one call of this size fits every limit, then reserve it.

        A call reserves input + max_tokens and gets back what it did not use, except
        under ``charge_max`` (OpenAI), where the provider charges max(input, max_tokens)
        up front and keeps it: that is what is reserved and nothing is given back.
        """
        total = max(input_tokens, max_tokens) if self.charge_max else input_tokens + max_tokens
        async with self._queue:
            while True:
                now = self._clock()
                for bucket in self._buckets:
                    bucket.refill(now, self.factor)
                wait = max(
                    self.blocked_until - now,
                    self.requests.wait_s(1, self.factor),
                    self.tokens.wait_s(total, self.factor),
                    self.input_tokens.wait_s(input_tokens, self.factor),
                    self.output_tokens.wait_s(max_tokens, self.factor),
                )
                if wait > 0:
                    await anyio.sleep(wait)
                    continue
                if self.in_flight >= self._in_flight_cap():
                    if self._freed.is_set():
                        self._freed = anyio.Event()
                    await self._freed.wait()
                    continue
                self.requests.take(1)
                self.tokens.take(total)
                self.input_tokens.take(input_tokens)
                self.output_tokens.take(max_tokens)
                self.in_flight += 1
                return Ticket(1, total, input_tokens, max_tokens, now)

    def _in_flight_cap(self) -> float:
        """Calls in flight needed to run at the limit: rate x latency, with headroom.
        One until the first call has settled: its answer may announce the limits."""
        if self._settled == 0:
            return 1.0
        cap = min(self._concurrency_cap, self.max_in_flight)
        if self.requests.limit is not None and self._latency_s > 0:
            need = self.requests.limit * self.factor / 60.0 * self._latency_s * 1.5 + 2
            cap = min(cap, max(need, 1.0))
        return cap

    def record(self, ticket: Ticket, outcome: CallResult | ProviderError | None) -> None:
        """Settle a reservation with what the call did (None: it was given up on)."""
        now = self._clock()
        self.in_flight -= 1
        self._settled += 1
        self._freed.set()
        latency = now - ticket.sent_at
        self._latency_s = latency if self._latency_s == 0 else 0.9 * self._latency_s + 0.1 * latency
        info: RateLimitInfo | None = None
        if isinstance(outcome, CallResult):
            usage = outcome.usage
            used = usage.input_tokens + usage.output_tokens
            if not self.charge_max:
                self.tokens.give_back(ticket.tokens - used)
            self.input_tokens.give_back(ticket.input_tokens - usage.input_tokens)
            self.output_tokens.give_back(ticket.output_tokens - usage.output_tokens)
            self._window.append((now, used))
            self.factor += (1.0 - self.factor) * REGROW
            self._concurrency_cap = min(self.max_in_flight, self._concurrency_cap + REGROW * 20)
            info = outcome.rate_limits
        elif isinstance(outcome, ProviderError):
            info = outcome.rate_limits
            if outcome.kind in ("rate_limited", "overloaded"):
                self._throttle(now, outcome.retry_after)
            else:
                self.tokens.give_back(ticket.tokens)
                self.input_tokens.give_back(ticket.input_tokens)
                self.output_tokens.give_back(ticket.output_tokens)
        if info is not None:
            self.observe(info)
        self._maybe_publish(now, force=isinstance(outcome, ProviderError))

    def _throttle(self, now: float, retry_after: float | None) -> None:
        self.throttled += 1
        wait = DEFAULT_BACKOFF_S if retry_after is None else retry_after
        self.blocked_until = max(self.blocked_until, now + wait)
        self.factor = max(FLOOR, self.factor * CUT)
        self._concurrency_cap = max(1.0, min(self._concurrency_cap, self.in_flight + 1) * CUT)

    def observe(self, info: RateLimitInfo) -> None:
        now = self._clock()
        self.requests.learn(info.requests_limit, info.requests_remaining, now)
        self.tokens.learn(info.tokens_limit, info.tokens_remaining, now)
        self.input_tokens.learn(info.input_tokens_limit, info.input_tokens_remaining, now)
        self.output_tokens.learn(info.output_tokens_limit, info.output_tokens_remaining, now)

    def measured(self, now: float | None = None) -> tuple[float, float]:
        """Requests and tokens per minute over the last minute (or since the first call)."""
        now = self._clock() if now is None else now
        window = self._window
        while window and window[0][0] < now - WINDOW_S:
            window.popleft()
        if not window:
            return 0.0, 0.0
        span = max(now - window[0][0], 1.0)
        scale = 60.0 / min(span, WINDOW_S)
        return len(window) * scale, sum(tokens for _, tokens in window) * scale

    def snapshot(self) -> RateLimitUpdated:
        now = self._clock()
        rpm, tpm = self.measured(now)
        return RateLimitUpdated(
            model=self.model,
            rpm_limit=self.requests.limit,
            tpm_limit=self.tokens.limit or self.input_tokens.limit,
            rpm_measured=rpm,
            tpm_measured=tpm,
            throttled=self.throttled,
            backoff_s=max(0.0, self.blocked_until - now),
        )

    def _maybe_publish(self, now: float, *, force: bool) -> None:
        if self._publish is not None and (force or now - self._published_at >= PUBLISH_EVERY_S):
            self._published_at = now
            self._publish(self.snapshot())
