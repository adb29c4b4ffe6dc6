"""The per-model rate limiter: on a fake clock (buckets, give-backs, headers, 429 back-off,
the lone first call), on the real one (the queue), and paced against the fake server's
1-second bucket over real HTTP."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import pytest

from engine import with_settings
from engine._errors import ProviderError
from engine._events import RateLimitUpdated
from engine._ratelimit import CUT, Bucket, RateLimiter
from engine._results import Usage
from engine._run import _limiters
from engine.cli._args import build_parser, config_from_args, given_settings
from engine.providers._base import CallResult, RateLimitInfo
from tests.engine.scripted import items, make_run
from tests.fakeserver.fixtures import serve_in_process

pytestmark = pytest.mark.anyio

KEY = "sk-pacing-test-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_burst_seconds_of_refill_and_pays_a_big_call_as_debt() -> None:
    bucket = Bucket(limit=600, burst_s=1.0, level=0, updated=0)
    assert bucket.capacity == 10  # one second of 600/min, not a minute's worth
    bucket.refill(0.5, 1.0)
    assert bucket.level == pytest.approx(5)
    bucket.refill(500, 1.0)
    assert bucket.level == 10
    assert bucket.wait_s(25, 1.0) == 0  # a call bigger than the bucket waits for a full one
    bucket.take(25)
    assert bucket.level == -15  # ... and the rest is paid back before the next call goes
    assert bucket.wait_s(1, 0.5) == pytest.approx(16 / 5)


def test_a_bucket_starts_a_tenth_full_whether_given_or_learned() -> None:
    given = Bucket.starting(600, 2.0, now=0)
    assert (given.capacity, given.level, given.fixed) == (20, 2, True)
    learned = Bucket.starting(None, 1.0, now=0)
    learned.learn(600, None, now=5)
    assert (learned.capacity, learned.level, learned.fixed) == (10, 1, False)


async def test_tokens_are_reserved_and_the_unused_part_given_back() -> None:
    clock = Clock()
    limiter = RateLimiter("anthropic:m", tpm=60_000, clock=clock)
    clock.now += 60
    ticket = await limiter.acquire(100, 400)
    assert limiter.tokens.level == pytest.approx(500)
    limiter.record(ticket, CallResult("ok", Usage(90, 10)))
    assert limiter.tokens.level == pytest.approx(900)


async def test_openai_charges_max_of_input_and_max_tokens_and_keeps_it() -> None:
    clock = Clock()
    limiter = RateLimiter("openai:m", tpm=60_000, charge_max=True, clock=clock)
    clock.now += 60
    ticket = await limiter.acquire(100, 400)
    assert limiter.tokens.level == pytest.approx(600)
    limiter.record(ticket, CallResult("ok", Usage(90, 10)))
    assert limiter.tokens.level == pytest.approx(600)


async def test_limits_are_learned_from_headers_and_lowered_to_remaining() -> None:
    clock = Clock()
    limiter = RateLimiter("openai:m", burst_s=60, clock=clock)
    ticket = await limiter.acquire(10, 10)
    info = RateLimitInfo(requests_limit=600, requests_remaining=20, tokens_limit=10_000)
    limiter.record(ticket, CallResult("ok", Usage(1, 1), rate_limits=info))
    assert limiter.requests.limit == 600 and limiter.requests.level == 20
    assert limiter.tokens.limit == 10_000
    limiter.observe(RateLimitInfo(requests_remaining=500))
    assert limiter.requests.level == 20  # never raised by the server's figure
    limiter.observe(RateLimitInfo(requests_remaining=-1e9, tokens_remaining=-math.inf))
    assert limiter.requests.level == 0 and limiter.tokens.level == 0  # nor below empty


async def test_the_first_call_goes_alone_until_its_answer_can_announce_limits() -> None:
    limiter = RateLimiter("openai:m", clock=Clock())
    first = await limiter.acquire(10, 10)
    tickets = []

    async def second() -> None:
        tickets.append(await limiter.acquire(10, 10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert tickets == []  # no limit known yet: one call in flight
        limiter.record(first, CallResult("ok", Usage(1, 1), rate_limits=RateLimitInfo()))
    assert len(tickets) == 1  # no headers at all (Gemini): the rest are not held back


async def test_waiting_calls_are_served_first_come_first_served() -> None:
    # 600,000 tokens/min is 10,000/s: from an empty bucket the big reservation waits 0.5 s
    # at the head of the queue, and the small one, queued behind it, is not let past it.
    limiter = RateLimiter("anthropic:m", tpm=600_000)
    limiter.record(await limiter.acquire(1, 1), None)
    limiter.tokens.level = 0.0
    order: list[str] = []

    async def call(name: str, max_tokens: int) -> None:
        await limiter.acquire(0, max_tokens)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "big", 5000)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(call, "small", 10)
    assert order == ["big", "small"]


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
    limiter.record(await limiter.acquire(1, 1), CallResult("ok", Usage(1, 1)))
    tickets = [await limiter.acquire(1, 1) for _ in range(10)]
    limiter.record(tickets.pop(), ProviderError("rate_limited", "quota", retry_after=0.0))
    assert limiter._in_flight_cap() <= 10 * CUT + 1


def test_burst_is_a_speed_setting_of_run_and_resume_that_reaches_each_limiter() -> None:
    parser = build_parser()
    config = config_from_args(parser.parse_args(["run", "in.jsonl", "--burst", "2.5"]))
    assert config.burst == 2.5
    resumed = given_settings(parser.parse_args(["resume", "r1", "--burst", "4"]))
    assert resumed == {"burst": 4.0}
    changed = with_settings(config, resumed)
    assert changed.fingerprint() == config.fingerprint()  # speed, not results: resumable
    limiter = _limiters(changed.model_copy(update={"rpm": 600}), lambda event: None)
    assert limiter["simulate:gpt-4o-mini"].requests.capacity == 40


PACED_RPM = 2400
"""40 calls/s: the fake server's one-second bucket holds 40, fewer than the workers."""
PACED_ITEMS = 160


@pytest.mark.parametrize("given", [True, False], ids=["rpm-given", "rpm-from-headers"])
async def test_calls_are_paced_under_a_one_second_bucket_with_no_burst_at_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: bool
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    options = {"api_key": KEY, "rpm": PACED_RPM, "burst_s": 1.0, "latency_ms": 100}
    async with serve_in_process(**options) as server:
        run = make_run(
            tmp_path,
            items(PACED_ITEMS),
            models=("openai:gpt-4o-mini",),
            base_url=server.openai_base_url,
            workers=128,
            rpm=PACED_RPM if given else None,
        )
        with anyio.fail_after(30):
            finished = await run.execute()
        stats = server.stats()
    assert finished.ok == PACED_ITEMS
    assert stats["rate_limited"] == 0
    times = sorted(stats["accepted_times"])
    per_minute = (len(times) - 1) / (times[-1] - times[0]) * 60
    assert per_minute >= 0.9 * PACED_RPM
