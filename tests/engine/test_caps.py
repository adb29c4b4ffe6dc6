"""Money caps are hard: no mix of prices and token usages pushes spending past them."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._budget import Budget, to_units_up
from engine._events import CostUpdated, ItemFinished
from engine._prices import Price
from engine._results import Usage
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, items, make_run

prices = st.builds(
    Price,
    input=st.floats(0.01, 80, allow_nan=False),
    output=st.floats(0.01, 80, allow_nan=False),
    cached_input=st.none() | st.floats(0.0, 0.01),
)


@given(
    cap=st.floats(0.0, 1.0),
    calls=st.lists(
        st.tuples(st.integers(1, 50_000), st.integers(1, 4096), st.floats(0, 1), st.floats(0, 1)),
        max_size=200,
    ),
    price=prices,
)
def test_budget_never_lets_spending_pass_the_cap(cap, calls, price) -> None:
    budget = Budget.create(cap)
    held = []
    for bound, max_tokens, used_in, used_out in calls:
        units = to_units_up(price.worst_case(bound, max_tokens))
        if budget.try_reserve(units):
            usage = Usage(math.floor(bound * used_in), math.floor(max_tokens * used_out))
            held.append((units, price.cost(usage)))
        if held and len(held) % 3 == 0:
            budget.settle(*held.pop(0))
        assert budget.spent_units + budget.reserved_units <= budget.cap_units
    for units, actual in held:
        budget.settle(units, actual)
    assert budget.spent_usd <= cap


def write_prices(home: Path, price: Price) -> None:
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    entry = {"input": price.input, "output": price.output}
    (config / "prices.json").write_bytes(orjson.dumps({"models": {"simulate:capped": entry}}))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cap=st.floats(0.0001, 0.05),
    price=prices,
    fractions=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30),
    max_tokens=st.integers(1, 2000),
)
def test_engine_spends_at_most_the_cap(
    tmp_path_factory, batchdeck_home: Path, cap, price, fractions, max_tokens
) -> None:
    write_prices(batchdeck_home, price)
    calls = iter(fractions * 10)

    def script(request: CallRequest) -> CallResult:
        used_in, used_out = next(calls, (1.0, 1.0))
        usage = Usage(
            math.floor(len(request.prompt.encode()) * used_in),
            math.floor(request.max_tokens * used_out),
        )
        return CallResult("x", usage)

    tmp = tmp_path_factory.mktemp("caps")
    run = make_run(tmp, items(40), models=("simulate:capped",), max_cost=cap, max_tokens=max_tokens)
    events: list = []
    providers = {"simulate:capped": ScriptedProvider(script)}
    finished = anyio.run(lambda: run.execute([events.append], providers=providers))
    spent = sum(e.result.cost_usd for e in events if isinstance(e, ItemFinished))
    assert spent <= cap
    assert finished.cost_usd <= cap
    assert all(e.spent_usd <= cap for e in events if isinstance(e, CostUpdated))


lying_costs = st.none() | st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-9, 1e30])
"""What a lying provider's usage can price to: unknown, NaN, infinite, negative, absurd."""


@given(
    cap=st.floats(0.0, 1.0),
    calls=st.lists(
        st.tuples(st.integers(1, 50_000), st.integers(1, 4096), st.floats(0, 1) | lying_costs),
        max_size=200,
    ),
    price=prices,
)
def test_lying_costs_never_lower_spending_nor_pass_the_cap(cap, calls, price) -> None:
    """An unknown or unreadable cost is charged its reservation; an absurd one is recorded.
    Recorded spending never goes down, and passes the cap only by what was billed past a
    reservation."""
    budget = Budget.create(cap)
    billed_past = 0
    for bound, max_tokens, fraction in calls:
        units = to_units_up(price.worst_case(bound, max_tokens))
        if not budget.try_reserve(units):
            continue
        before = budget.spent_units
        actual = fraction
        if isinstance(fraction, float) and 0 <= fraction <= 1:
            actual = price.worst_case(bound, max_tokens) * fraction
        charged = budget.settle(units, actual)
        assert budget.spent_units == before + charged >= before
        billed_past += max(0, charged - units)
        assert budget.spent_units + budget.reserved_units <= budget.cap_units + billed_past


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cap=st.floats(0.0001, 0.05),
    price=prices,
    lies=st.lists(st.sampled_from(["unknown", "honest", "zero"]), min_size=1, max_size=10),
)
def test_engine_charges_unknown_usage_and_stays_within_the_cap(
    tmp_path_factory, batchdeck_home: Path, cap, price, lies
) -> None:
    write_prices(batchdeck_home, price)
    answers = iter(lies * 10)

    def script(request: CallRequest) -> CallResult:
        lie = next(answers, "honest")
        if lie == "unknown":
            return CallResult("x", Usage(unknown=True))
        used = 0 if lie == "zero" else request.max_tokens
        return CallResult("x", Usage(len(request.prompt.encode()), used))

    run = make_run(tmp_path_factory.mktemp("lies"), items(30), models=("simulate:capped",),
                   max_cost=cap, max_tokens=200)  # fmt: skip
    events: list = []
    finished = anyio.run(
        lambda: run.execute(
            [events.append], providers={"simulate:capped": ScriptedProvider(script)}
        )
    )
    spent = [e.spent_usd for e in events if isinstance(e, CostUpdated)]
    assert spent == sorted(spent)
    assert finished.cost_usd <= cap
    results = [e.result for e in events if isinstance(e, ItemFinished)]
    unknown = [r for r in results if r.usage.unknown]
    assert all(r.cost_usd > 0 for r in unknown)
    assert sum(r.cost_usd for r in results) == pytest.approx(finished.cost_usd)
