"""A fixed, realistic run for screen tests: two models, failures, retries, rate limits.

Everything comes from hand-built events and a clock the scene moves itself, so
a snapshot of the run screen is the same on every machine and every run.
"""

from __future__ import annotations

from engine._events import (
    CostUpdated,
    Event,
    ItemsCounted,
    RateLimitUpdated,
    WorkersChanged,
)
from tests.tui._factories import (
    MODEL,
    OTHER_MODEL,
    FakeClock,
    finished,
    retrying,
    run_started,
    started,
)
from tui.model import RunModel

ANSWERS = (
    "billing: asks for a refund of the annual plan",
    "bug: export to CSV drops the last row",
    "account: wants to change the owner's e-mail",
    "feature: dark mode for the mobile app",
)


def _second(second: int) -> list[Event]:
    events: list[Event] = []
    for k in range(4):
        n = second * 4 + k
        id = f"ticket-{n:04d}"
        for model in (MODEL, OTHER_MODEL):
            events.append(started(id, model))
            cost = 0.00021 if model == MODEL else 0.0012
            if n % 7 == 3 and model == OTHER_MODEL:
                events.append(
                    finished(
                        id,
                        model,
                        status="failed",
                        kind="rate_limited",
                        message="429 Too Many Requests: retry budget spent",
                        cost=0.0,
                        attempts=3,
                    )
                )
            else:
                events.append(
                    finished(
                        id,
                        model,
                        output=ANSWERS[n % len(ANSWERS)],
                        cost=cost,
                        tokens=(400 + n, 20 + n % 9),
                        latency_ms=600.0 + 10 * k,
                    )
                )
    return events


def busy_run(clock: FakeClock) -> RunModel:
    """A run 20 s in: 160 of 400 pairs done, some failed, a few in flight."""
    model = RunModel(clock=clock)
    model.apply_all(
        [run_started(MODEL, OTHER_MODEL), ItemsCounted(total=400, invalid=2), WorkersChanged(8)]
    )
    for second in range(20):
        clock.advance(1)
        model.apply_all(_second(second))
    model.apply_all(
        [
            started("ticket-0080", MODEL),
            started("ticket-0080", OTHER_MODEL),
            started("ticket-0081", MODEL),
            retrying("ticket-0081", OTHER_MODEL, kind="overloaded", delay_s=2.5),
            CostUpdated(
                spent_usd=model.cost_usd,
                reserved_usd=0.0042,
                cap_usd=0.5,
                in_flight_usd=0.0031,
                calls_in_flight=3,
            ),
            RateLimitUpdated(MODEL, 500, 200_000, 312, 131_000, throttled=0, backoff_s=0.0),
            RateLimitUpdated(OTHER_MODEL, 50, 40_000, 48, 21_500, throttled=3, backoff_s=4.2),
        ]
    )
    return model


PIPELINE_LANES = (
    f"extract/{MODEL}",
    f"classify/{MODEL}",
    f"summarise/{OTHER_MODEL}",
)


def pipeline_run(clock: FakeClock) -> RunModel:
    """A three-step pipeline 12 s in: items done, one stopped at classify (its summarise
    skipped), others at each step."""
    model = RunModel(clock=clock)
    extract, classify, summarise = PIPELINE_LANES
    model.apply_all([run_started(*PIPELINE_LANES), ItemsCounted(total=60, invalid=0)])
    for n in range(12):
        clock.advance(1)
        id = f"ticket-{n:04d}"
        events: list[Event] = [started(id, extract), finished(id, extract, cost=0.00012)]
        if n % 5 == 2:
            events += [
                started(id, classify),
                finished(
                    id,
                    classify,
                    status="failed",
                    kind="timeout",
                    cost=0.0,
                    message="no answer in 60 s",
                ),  # fmt: skip
                finished(
                    id,
                    summarise,
                    status="skipped",
                    kind="upstream",
                    message="classify: timeout",
                    cost=0.0,
                    attempts=0,
                ),  # fmt: skip
            ]
        elif n < 9:
            events += [started(id, classify), finished(id, classify, cost=0.00009)]
            events += [started(id, summarise)]
            if n < 6:
                events += [finished(id, summarise, cost=0.0011)]
        else:
            events += [started(id, classify)]
        model.apply_all(events)
    return model
