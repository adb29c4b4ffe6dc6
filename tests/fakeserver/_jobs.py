"""Batch jobs, whatever the provider: what each request answers and where a job stands.

A job's whole timeline is fixed when it is created, from the configuration of
that moment: it waits ``batch_queue_s`` (queued), then its requests finish one
after another, evenly over ``batch_s``; each fails with ``batch_failure_rate``
(a draw seeded by job and custom id); with ``batch_expire_fraction`` the job
expires once that fraction has run; a cancel stops it at once and it is
``cancelling`` for ``batch_cancel_s``. Nothing runs in the background: a job's
state is computed from the clock when asked, so a test never waits on a task
and a job never outlives its server.

The book also counts every custom id any job ever accepted (``accepted``,
served on ``GET /_batch/accepted``): a client that submits an item twice, after
a crash say, shows up there. Its clock is the wall clock, which a test may move
forward (``POST /_batch/clock``) to step jobs through their states without
waiting for them.

The provider modules (``_openai_batches``, ``_anthropic_batches``,
``_gemini_batches``) only translate this neutral job to and from their wire.
"""

from __future__ import annotations

import itertools
import math
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tests.fakeserver._config import ServerConfig
from tests.fakeserver._dialect import Call, Dialect, Reply, answer_for

if TYPE_CHECKING:
    from tests.fakeserver._state import ServerState

Phase = Literal["queued", "running", "ended", "expired", "cancelling", "cancelled"]
Result = Literal["succeeded", "errored", "expired", "cancelled"]


@dataclass(frozen=True, slots=True)
class Request:
    custom_id: str
    call: Call


@dataclass
class Job:
    id: str
    requests: list[Request]
    created: float
    """Unix seconds."""
    config: ServerConfig
    """The server's configuration when the job was created: its timeline."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What the provider keeps with the job (metadata, display name, input kind)."""
    cancelled_at: float | None = None

    @property
    def _start(self) -> float:
        return self.created + self.config.batch_queue_s

    @property
    def expires_at(self) -> float | None:
        fraction = self.config.batch_expire_fraction
        return None if fraction is None else self._start + self.config.batch_s * fraction

    @property
    def ends_at(self) -> float:
        return self._start + self.config.batch_s

    def stopped_at(self) -> float | None:
        """When the job stopped running requests early (expiry or cancel), if it did."""
        stops = [t for t in (self.expires_at, self.cancelled_at) if t is not None]
        return min(stops) if stops and min(stops) < self.ends_at else None

    def ran(self, now: float) -> int:
        """How many requests (the first ones) have finished by ``now``."""
        if self.cancelled_at is not None:
            now = min(now, self.cancelled_at)
        run_s = self.config.batch_s
        fraction = (now >= self._start) if run_s <= 0 else (now - self._start) / run_s
        expiry = self.config.batch_expire_fraction
        if expiry is not None:  # exactly that fraction, whatever the float error of the times
            fraction = min(fraction, expiry)
        return max(0, min(len(self.requests), math.floor(fraction * len(self.requests))))

    def phase(self, now: float) -> Phase:
        stop = self.stopped_at()
        if stop is not None and now >= stop:
            if stop == self.cancelled_at:
                done = now >= stop + self.config.batch_cancel_s
                return "cancelled" if done else "cancelling"
            return "expired"
        if now < self._start:
            return "queued"
        return "running" if now < self.ends_at else "ended"

    def done(self, now: float) -> bool:
        return self.phase(now) in ("ended", "expired", "cancelled")

    def cancel(self, now: float) -> None:
        """Stop running requests at ``now``, unless the job is over (then nothing changes)."""
        if self.cancelled_at is None and not self.done(now) and self.requests:
            self.cancelled_at = now

    def fails(self, request: Request) -> bool:
        draw = zlib.crc32(f"{self.config.seed}:{self.id}:{request.custom_id}".encode())
        return draw / 2**32 < self.config.batch_failure_rate

    def results(self, now: float) -> list[tuple[Request, Result]]:
        """Every request's result, once the job is done (before: the finished ones)."""
        ran = self.ran(now)
        unrun: Result = "cancelled" if self.phase(now) == "cancelled" else "expired"
        done = self.done(now)
        return [
            (request, ("errored" if self.fails(request) else "succeeded") if i < ran else unrun)
            for i, request in enumerate(self.requests)
            if i < ran or done
        ]

    def counts(self, now: float) -> Counter[str]:
        """How many requests are ``succeeded``, ``errored``, ``expired``, ``cancelled`` or
        ``processing``."""
        counted: Counter[str] = Counter(result for _, result in self.results(now))
        counted["processing"] = len(self.requests) - sum(counted.values())
        return counted


class BatchBook:
    """Every job and uploaded file the server holds, and every custom id it accepted."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, bytes] = {}
        self.accepted: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self.offset_s = 0.0
        """How far the jobs' clock is ahead of the wall clock (``POST /_batch/clock``)."""

    def now(self) -> float:
        """The jobs' clock: Unix time, plus what tests advanced it by."""
        return time.time() + self.offset_s

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}fake"

    def add(
        self, requests: list[Request], config: ServerConfig, *, prefix: str, **extra: Any
    ) -> Job:
        job = Job(self.new_id(prefix), requests, self.now(), config, dict(extra))
        self.jobs[job.id] = job
        self.accepted.update(request.custom_id for request in requests)
        return job

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_batch/accepted`` answers."""
        return {
            "requests": sum(self.accepted.values()),
            "distinct": len(self.accepted),
            "repeated": {cid: n for cid, n in self.accepted.items() if n > 1},
            "jobs": len(self.jobs),
        }


def answer(dialect: Dialect, state: ServerState, job: Job, request: Request) -> Reply:
    """The reply a finished request gets: its provider's 200 body, or its 500."""
    call = request.call
    if job.fails(request):
        return dialect.error("500", model=call.model)
    tokens = state.tokens(call)
    state.remember(call)
    body = dialect.answer(call, answer_for(call, tokens, None), f"{job.id}-{request.custom_id}")
    return Reply(200, body)
