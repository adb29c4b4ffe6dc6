"""Prices from genai-prices' data, with the user's file on top: tiers, cache writes and reads,
batch prices, override precedence, unpriced models, and a reservation never below the cost.

What a call costs is checked against genai-prices' own calculator on the same data, so the
figures here are the data's, never copied by hand.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from hypothesis import given
from hypothesis import strategies as st

from engine._budget import to_units, to_units_up
from engine._errors import ConfigError
from engine._prices import Price, PriceTable
from engine._results import Usage

TIERED = "gemini:gemini-2.5-pro"
"""Gemini 2.5 Pro: every token costs more once the prompt passes 200k tokens."""
CACHE_WRITES = "anthropic:claude-sonnet-4-5"
"""Anthropic bills prompt-cache writes above plain input, and reads far below it."""
BATCHED = "openai:gpt-4o-mini"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load(Path("/nonexistent/prices.json"))


def price_of(table: PriceTable, spec: str) -> Price:
    price = table.lookup(spec)
    assert price is not None, spec
    return price


def genai_cost(spec: str, usage: Usage, **context: str) -> float:
    """What genai-prices itself computes for ``usage`` (its input counts cache reads and
    writes, as batchdeck's does)."""
    provider = {"gemini": "google"}.get(spec.partition(":")[0], spec.partition(":")[0])
    calc = calc_price(
        GenaiUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens,
        ),
        spec.partition(":")[2],
        provider_id=provider,
        genai_request_timestamp=datetime.now(UTC),
        price_context=context or None,
    )
    return float(calc.total_price)


def test_a_tier_applies_past_its_threshold_to_every_token(table: PriceTable) -> None:
    price = price_of(table, TIERED)
    [(above, tier)] = price.tiers
    below, past = Usage(above, 1_000), Usage(above + 1, 1_000)
    assert price.cost(below) == pytest.approx(genai_cost(TIERED, below), rel=1e-12)
    assert price.cost(past) == pytest.approx(genai_cost(TIERED, past), rel=1e-12)
    assert tier.input > price.input and tier.output > price.output
    assert price.cost(past) > price.cost(below) * 1.5  # the whole call pays the tier's rate
    # the cap reserves the dearer tier as soon as the prompt may reach it
    assert price.worst_case(above, 1_000) == pytest.approx(price.cost(below), rel=1e-12)
    assert price.worst_case(above + 1, 1_000) >= price.cost(past)


def test_cache_writes_and_reads_are_priced_at_their_rates(table: PriceTable) -> None:
    price = price_of(table, CACHE_WRITES)
    assert price.cache_write is not None and price.cache_write > price.input
    assert price.cached_input is not None and price.cached_input < price.input
    written = Usage(3_000, 200, cache_write_tokens=2_500)
    read = Usage(3_000, 200, cached_tokens=2_500)
    plain = Usage(3_000, 200)
    for usage in (written, read, plain):
        assert price.cost(usage) == pytest.approx(genai_cost(CACHE_WRITES, usage), rel=1e-12)
    assert price.cost(read) < price.cost(plain) < price.cost(written)
    assert price.saved_by_cache(read) == pytest.approx(price.cost(plain) - price.cost(read))
    assert price.saved_by_cache(written) < 0
    # a prompt that may be written to the cache reserves the write rate on all of it
    assert price.worst_case(3_000, 200) >= price.cost(Usage(3_000, 200, cache_write_tokens=3_000))


def test_batch_prices_come_from_the_data_and_default_to_the_online_ones(
    table: PriceTable,
) -> None:
    price = price_of(table, BATCHED)
    usage = Usage(10_000, 2_000, cached_tokens=4_000)
    batch = price.batch()
    assert batch.input < price.input and batch.output < price.output
    assert batch.cost(usage) == pytest.approx(
        genai_cost(BATCHED, usage, processing="batch"), rel=1e-12
    )
    assert batch.cached_input is not None and batch.cached_input <= batch.input
    unbatched = Price(1.0, 2.0, cached_input=0.5)
    assert unbatched.batch() == unbatched


def test_a_flat_price_behaves_as_before() -> None:
    price = Price(0.5, 8.0, cached_input=0.25)
    assert price.cost(Usage(1_000, 100, cached_tokens=400)) == pytest.approx(
        (600 * 0.5 + 400 * 0.25 + 100 * 8.0) / 1e6
    )
    assert price.worst_case(1_000, 100) == pytest.approx((1_000 * 0.5 + 100 * 8.0) / 1e6)
    assert price.output_tokens_within(price.worst_case(1_000, 100), 1_000) == 100


def write_prices(path: Path, models: dict[str, object]) -> Path:
    path.write_bytes(orjson.dumps({"models": models}))
    return path


def test_the_user_file_wins_over_the_data_by_name_bare_name_and_prefix(tmp_path: Path) -> None:
    mine = {"input": 7.0, "output": 9.0, "batch_input": 3.0, "batch_output": 4.0}
    path = write_prices(tmp_path / "prices.json", {BATCHED: mine, "openai:gpt-4o": mine})
    table = PriceTable.load(path)
    data = PriceTable.load(tmp_path / "none.json")
    for spec in (BATCHED, "simulate:gpt-4o-mini", "openai:gpt-4o-2024-08-06"):
        price = price_of(table, spec)
        assert (price.input, price.output) == (7.0, 9.0), spec
        assert (price.batch().input, price.batch().output) == (3.0, 4.0)
        assert price != data.lookup(spec)
    assert table.lookup(TIERED) == data.lookup(TIERED)  # others still come from the data
    assert table.models_of("openai")[:2] == [BATCHED, "openai:gpt-4o"]


def test_a_model_the_data_does_not_know_is_unpriced(table: PriceTable) -> None:
    assert table.lookup("simulate:my-own-model") is None
    assert table.lookup("anthropic:claude-from-the-future-9") is None
    assert table.lookup("simulate:gpt-4o-mini") == table.lookup(BATCHED)


def test_a_bad_user_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.json", {"x:y": {"input": 1, "output": 1, "tier": 2}})
    with pytest.raises(ConfigError, match=r"prices.json: model 'x:y': unknown field 'tier'"):
        PriceTable.load(path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        PriceTable.load(tmp_path / "broken.json")


def test_prices_load_offline_and_say_how_recent_they_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("prices reached for the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("BATCHDECK_HOME", str(tmp_path))
    table = PriceTable.load()
    assert table.lookup(TIERED) is not None
    assert table.as_of.startswith("genai-prices ") and "facts up to 20" in table.as_of
    assert table.models_of("anthropic")[0].startswith("anthropic:claude-")


def test_current_models_are_listed_first(table: PriceTable) -> None:
    listed = table.models_of("gemini")
    assert TIERED in listed and all(spec.startswith("gemini:gemini") for spec in listed)
    dated = [i for i, spec in enumerate(listed) if price_of(table, spec).cached_input is None]
    assert dated and min(dated) > listed.index(TIERED)  # old models, priced without caching
    assert min(dated) > listed.index("gemini:gemini-2.5-flash")


tiers = st.lists(
    st.tuples(
        st.integers(0, 2_000_000),
        st.tuples(*[st.decimals(0, 100, places=3)] * 4),
    ),
    max_size=3,
)
rates = st.tuples(*[st.decimals(0, 100, places=3)] * 4)


def _flat(values: tuple[Decimal, ...]) -> Price:
    inp, out, read, write = (float(v) for v in values)
    return Price(inp, out, read, write)


@given(
    base=rates,
    raw_tiers=tiers,
    bound=st.integers(0, 3_000_000),
    output_cap=st.integers(0, 200_000),
    shares=st.tuples(*[st.floats(0, 1)] * 4),
)
def test_the_reservation_is_never_below_the_settled_cost(
    base: tuple[Decimal, ...],
    raw_tiers: list[tuple[int, tuple[Decimal, ...]]],
    bound: int,
    output_cap: int,
    shares: tuple[float, float, float, float],
) -> None:
    """Across tiers (in any order of dearness), cache reads and writes: what the cap reserves
    for a call with at most ``bound`` input and ``output_cap`` output tokens covers what any
    such call costs."""
    price = replace(
        _flat(base), tiers=tuple(sorted(((a, _flat(r)) for a, r in raw_tiers), key=lambda t: t[0]))
    )
    used_in = int(bound * shares[0])
    reads = int(used_in * shares[1])
    writes = int((used_in - reads) * shares[2])
    usage = Usage(used_in, int(output_cap * shares[3]), reads, cache_write_tokens=writes)
    assert to_units(price.cost(usage)) <= to_units_up(price.worst_case(bound, output_cap))
    budget = price.worst_case(bound, output_cap)
    within = price.output_tokens_within(budget, bound)
    assert price.worst_case(bound, within) <= budget * (1 + 1e-12)
