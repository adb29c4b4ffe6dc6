"""The per-model rate limiter on a fake clock: buckets, give-backs, headers, 429 back-off."""

from __future__ import annotations

import pytest

from engine._errors import ProviderError
from engine._events import RateLimitUpdated
from engine._ratelimit import CUT, Bucket, RateLimiter
from engine._results import Usage
from engine.providers._base import CallResult, RateLimitInfo

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_continuously_up_to_its_limit() -> None:
    bucket = Bucket(limit=60, level=0, updated=0)
    bucket.refill(0.5, 1.0)
    assert bucket.level == pytest.approx(0.5)
    bucket.refill(500, 1.0)
    assert bucket.level == 60
    assert bucket.wait_s(61, 1.0) == 0  # a request bigger than the bucket waits for a full one
    bucket.take(60)
    assert bucket.wait_s(1, 0.5) == pytest.approx(2.0)


async def test_tokens_are_reserved_and_the_unused_part_given_back() -> None:
    clock = Clock()
    limiter = RateLimiter("anthropic:m", tpm=1000, clock=clock)
    ticket = await limiter.acquire(100, 400)
    assert limiter.tokens.level == pytest.approx(500)
    limiter.record(ticket, CallResult("ok", Usage(90, 10)))
    assert limiter.tokens.level == pytest.approx(900)


async def test_openai_charges_max_of_input_and_max_tokens_and_keeps_it() -> None:
    limiter = RateLimiter("openai:m", tpm=1000, charge_max=True, clock=Clock())
    ticket = await limiter.acquire(100, 400)
    assert limiter.tokens.level == pytest.approx(600)
    limiter.record(ticket, CallResult("ok", Usage(90, 10)))
    assert limiter.tokens.level == pytest.approx(600)


async def test_limits_are_learned_from_headers_and_lowered_to_remaining() -> None:
    clock = Clock()
    limiter = RateLimiter("openai:m", clock=clock)
    ticket = await limiter.acquire(10, 10)
    info = RateLimitInfo(requests_limit=600, requests_remaining=20, tokens_limit=10_000)
    limiter.record(ticket, CallResult("ok", Usage(1, 1), rate_limits=info))
    assert limiter.requests.limit == 600 and limiter.requests.level == 20
    assert limiter.tokens.limit == 10_000
    limiter.observe(RateLimitInfo(requests_remaining=500))
    assert limiter.requests.level == 20  # never raised by the server's figure


async def test_user_limits_win_over_headers() -> None:
    limiter = RateLimiter("openai:m", rpm=60, clock=Clock())
    limiter.observe(RateLimitInfo(requests_limit=10_000))
    assert limiter.requests.limit == 60


async def test_a_429_waits_what_the_server_said_and_cuts_the_rate() -> None:
    clock = Clock()
    published: list[RateLimitUpdated] = []
    limiter = RateLimiter("openai:m", rpm=600, clock=clock, publish=published.append)
    ticket = await limiter.acquire(1, 1)
    limiter.record(ticket, ProviderError("rate_limited", "slow", status=429, retry_after=7.5))
    assert limiter.blocked_until == pytest.approx(clock.now + 7.5)
    assert limiter.factor == pytest.approx(CUT)
    assert published[-1].throttled == 1 and published[-1].backoff_s == pytest.approx(7.5)
    for _ in range(100):
        limiter.record(await _free_ticket(limiter, clock), CallResult("ok", Usage(1, 1)))
    assert limiter.factor > 0.95


async def _free_ticket(limiter: RateLimiter, clock: Clock):
    clock.now = max(clock.now, limiter.blocked_until) + 1.0
    return await limiter.acquire(1, 1)


async def test_without_known_limits_a_429_cuts_calls_in_flight() -> None:
    clock = Clock()
    limiter = RateLimiter("gemini:m", clock=clock, max_in_flight=64)
    tickets = [await limiter.acquire(1, 1) for _ in range(10)]
    limiter.record(tickets.pop(), ProviderError("rate_limited", "quota", retry_after=0.0))
    assert limiter._in_flight_cap() <= 10 * CUT + 1
