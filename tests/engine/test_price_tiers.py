"""A long-context tier and prompt-cache writes stay inside the hard cap.

Gemini 2.5 Pro bills every token of a call at a dearer rate once its prompt passes 200k
tokens. A prompt whose byte bound can reach that tier must reserve the tier's rates: with
the base rates reserved, two such calls fit under a cap that their real bills pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import log
from engine._prices import PriceTable
from engine._results import Usage
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, execute, items, make_run

pytestmark = pytest.mark.anyio

MODEL = "simulate:gemini-2.5-pro"
"""Priced as Gemini 2.5 Pro (simulate takes the real model's prices)."""


async def test_a_prompt_that_may_pass_a_tier_reserves_the_tier_so_the_cap_holds(
    tmp_path: Path,
) -> None:
    price = PriceTable.load().lookup(MODEL)
    assert price is not None and price.tiers
    [(above, _)] = price.tiers
    billed = Usage(above + 500, 100)  # a long-context call, billed in the tier
    cap = 1.5 * price.cost(billed)  # room for one such call, not two

    def long_call(request: CallRequest) -> CallResult:
        return CallResult("x", billed)

    provider = ScriptedProvider(long_call)
    rows = items(3, context="y" * (above + 1_000))
    run = make_run(tmp_path, rows, models=(MODEL,), max_cost=cap, workers=1)
    finished, _ = await execute(run, provider)
    assert finished.overspent_usd == 0 and finished.cost_usd <= cap
    assert finished.state == "capped" and len(provider.requests) == 1
    assert log.scan(run.log_path).cost_usd == pytest.approx(price.cost(billed))


async def test_cache_writes_are_charged_at_their_rate_and_reserved(tmp_path: Path) -> None:
    model = "simulate:claude-sonnet-4-5"
    price = PriceTable.load().lookup(model)
    assert price is not None and price.cache_write is not None
    written = Usage(3_000, 50, cache_write_tokens=2_800)
    provider = ScriptedProvider(lambda request: CallResult("x", written))
    run = make_run(tmp_path, items(2, context="z" * 3_000), models=(model,), workers=1)
    finished, _ = await execute(run, provider)
    assert finished.cost_usd == pytest.approx(2 * price.cost(written))
    assert price.cost(written) > price.cost(Usage(3_000, 50))
    [first, _] = log.iter_results(run.log_path)
    assert first.usage.cache_write_tokens == 2_800 and first.cache_saved_usd < 0
