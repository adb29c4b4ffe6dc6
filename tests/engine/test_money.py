"""The money cap holds whatever the provider answers or the user passes through.

Each test drives the real engine, on real files and a real log, with a provider
whose answers the test scripts: usage that is unknown, usage above what was
reserved, calls cancelled after they were sent, passed-through fields that would
lift the output limit, paid retries near the cap, and a run killed mid-way.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from engine import log
from engine._budget import to_units_up, to_usd
from engine._errors import ConfigError
from engine._events import CapReached
from engine._export import json_row
from engine._prices import PriceTable
from engine._results import Usage
from engine._run import Run
from engine._tokens import input_token_bound
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, execute, in_background, items, make_run, until

pytestmark = pytest.mark.anyio

MODEL = "simulate:gpt-4o-mini"
PRICE = PriceTable.load().lookup(MODEL)
assert PRICE is not None


def worst_case(request: CallRequest, answers: int = 1) -> float:
    """What the engine reserves for ``request``: its cost if every bound were reached."""
    bound = input_token_bound(request.system, request.prompt)
    return to_usd(to_units_up(PRICE.worst_case(bound, request.max_tokens * answers)))


async def one_item_reserves(tmp_path: Path) -> float:
    """What the engine reserves for one item of ``items``, from a run of one."""
    probe = ScriptedProvider()
    (tmp_path / "probe").mkdir()
    await execute(make_run(tmp_path / "probe", items(1)), probe)
    return worst_case(probe.requests[0])


async def test_an_answer_of_unknown_usage_is_charged_its_reservation(tmp_path: Path) -> None:
    provider = ScriptedProvider(lambda r: CallResult("x", Usage(unknown=True)))
    run = make_run(tmp_path, items(3))
    finished, events = await execute(run, provider)
    reserved = sum(worst_case(r) for r in provider.requests)
    assert finished.cost_usd == pytest.approx(reserved) and reserved > 0
    [result] = [r for r in log.iter_results(run.log_path) if r.id == "item-0"]
    assert result.usage.unknown and result.cost_usd == pytest.approx(
        worst_case(provider.requests[0])
    )
    assert json_row(result)["usage_unknown"] is True
    assert log.scan(run.log_path).cost_usd == pytest.approx(reserved)


async def test_recorded_spend_never_goes_down_whatever_the_usage(tmp_path: Path) -> None:
    answers = iter([Usage(10, 5), Usage(unknown=True), Usage(0, 0), Usage(unknown=True)])
    provider = ScriptedProvider(lambda r: CallResult("x", next(answers)))
    run = make_run(tmp_path, items(4), workers=1)
    spent: list[float] = []
    finished = await run.execute(
        [lambda e: spent.append(e.spent_usd) if hasattr(e, "spent_usd") else None],
        providers={MODEL: provider},
    )
    assert spent == sorted(spent) and finished.cost_usd == spent[-1]


async def test_a_provider_billing_past_the_reservation_stops_the_run_and_says_by_how_much(
    tmp_path: Path,
) -> None:
    def overbill(request: CallRequest) -> CallResult:  # ten times the output it was allowed
        return CallResult("x", Usage(len(request.prompt), 10 * request.max_tokens))

    provider = ScriptedProvider(overbill)
    cap = 0.002
    run = make_run(tmp_path, items(50), workers=1, max_cost=cap)
    finished, events = await execute(run, provider)
    [capped] = [e for e in events if isinstance(e, CapReached)]
    assert capped.cap == "max_cost" and "passed by $" in capped.message
    assert "more tokens than the request allowed" in capped.message
    assert finished.state == "capped" and finished.cost_usd > cap
    # Nothing is sent once spending reached the cap: the last call alone passed it.
    assert finished.cost_usd - cap <= 10 * worst_case(provider.requests[-1])
    assert finished.cost_usd == pytest.approx(log.scan(run.log_path).cost_usd)


async def test_a_call_cancelled_once_sent_is_charged_its_reservation(tmp_path: Path) -> None:
    provider = ScriptedProvider()
    provider.gate = anyio.Event()  # calls hang until aborted: the provider may bill them
    run = make_run(tmp_path, items(4), workers=2)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 2)
        run.abort()
    finished, _ = outcome[0]
    assert finished.cost_usd == pytest.approx(sum(worst_case(r) for r in provider.requests))
    assert log.scan(run.log_path).cost_usd == pytest.approx(finished.cost_usd)


@pytest.mark.parametrize(
    "param", ["max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens"]
)
async def test_a_passed_field_that_lifts_the_output_limit_is_refused(
    tmp_path: Path, param: str
) -> None:
    with pytest.raises(
        ConfigError, match=f"--param {param} .* use --max-tokens instead"
    ):  # refused before the run is made, so before any call
        make_run(tmp_path, items(2), max_cost=0.01, params={param: 100_000})


async def test_a_nested_gemini_output_limit_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="maxOutputTokens"
    ):  # refused before the run is made, so before any call
        make_run(tmp_path, items(1), params={"generationConfig": {"maxOutputTokens": 9000}})


@pytest.mark.parametrize(
    ("param", "value"),
    [("model", "gpt-4.5-preview"), ("service_tier", "priority"), ("modalities", ["audio"])],
)
async def test_a_passed_field_that_changes_the_price_of_a_token_is_refused(
    tmp_path: Path, param: str, value: object
) -> None:
    # --param model=gpt-4.5-preview sent that model while reserving, charging and
    # labelling the results at gpt-4o-mini's price: 500 times less than it bills.
    with pytest.raises(
        ConfigError, match=f"--param {param} would change the price"
    ):  # refused before the run is made, so before any call
        make_run(tmp_path, items(2), max_cost=0.01, params={param: value})


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"tools": [{"type": "web_search_preview"}]}, "tools (web_search_preview)"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search_2025"),
        ({"tools": [{"type": "code_execution_20250522"}]}, "code_execution"),
        ({"tools": [{"google_search": {}}]}, "tools (google_search)"),
        ({"tools": [{"googleMaps": {}}]}, "tools (googleMaps)"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}, {"codeExecution": {}}]},
         "tools (codeExecution)"),
        ({"mcp_servers": [{"type": "url", "url": "https://x"}]}, "mcp_servers"),
    ],
)  # fmt: skip
async def test_a_tool_billed_per_use_is_refused(
    tmp_path: Path, params: dict[str, object], named: str
) -> None:
    # A web search is billed per use, beside the tokens: a $0.01 cap let 1,000 searches through.
    with pytest.raises(
        ConfigError, match=re.escape(named) + r".* bills each use"
    ):  # refused before the run is made, so before any call
        make_run(tmp_path, items(2), max_cost=0.01, params=params)


async def test_a_function_tool_the_caller_runs_is_let_through(tmp_path: Path) -> None:
    provider = ScriptedProvider()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    run = make_run(tmp_path, items(1), params={"tools": tools})
    finished, _ = await execute(run, provider)
    assert finished.state == "finished" and len(provider.requests) == 1


async def test_n_answers_multiply_the_reservation(tmp_path: Path) -> None:
    one = await one_item_reserves(tmp_path)
    provider = ScriptedProvider()
    # Room for one answer's worst case, not for four.
    run = make_run(tmp_path, items(1), max_cost=2 * one, params={"n": 4})
    finished, _ = await execute(run, provider)
    assert provider.requests == [] and finished.state == "capped"


async def test_a_number_of_answers_that_is_not_a_whole_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="--param n='lots'"
    ):  # refused before the run is made, so before any call
        make_run(tmp_path, items(1), params={"n": "lots"})


async def test_paid_retries_get_budget_before_new_items(tmp_path: Path) -> None:
    """Every item's first answer is invalid (paid, half its worst case); near the cap its
    retry goes before new items. Only retries still waiting when the last call in flight
    settled can end skipped, when what is left cannot hold them: fewer than the workers
    (before: 58 of 86 items here were paid once, then skipped)."""
    seen: set[str] = set()

    def first_invalid(request: CallRequest) -> CallResult:
        first = request.prompt not in seen
        seen.add(request.prompt)
        half = Usage(input_token_bound(None, request.prompt) // 2, request.max_tokens // 2)
        return CallResult("not json" if first else "{}", half)

    one = await one_item_reserves(tmp_path)
    workers = 16
    run = make_run(
        tmp_path, items(200), workers=workers, max_cost=30 * one, output_schema={"type": "object"}
    )
    finished, _ = await execute(run, ScriptedProvider(first_invalid))
    results = list(log.iter_results(run.log_path))
    paid_then_skipped = [r for r in results if r.status == "skipped" and r.cost_usd > 0]
    assert finished.state == "capped" and finished.ok >= 25
    assert len(paid_then_skipped) < workers
    assert 30 * one - finished.cost_usd < one  # they could not fit


async def test_paid_attempts_then_retried_are_logged_with_their_cost(tmp_path: Path) -> None:
    answers = iter(["no", "no", "{}"])
    provider = ScriptedProvider(lambda r: CallResult(next(answers), Usage(100, 10)))
    run = make_run(tmp_path, items(1), output_schema={"type": "object"})
    await execute(run, provider)
    paid = [r for r in log.read_records(run.log_path) if r["k"] == "paid"]
    assert [p["head"][2] for p in paid] == [1, 2]
    assert all(p["head"][3] == pytest.approx(PRICE.cost(Usage(100, 10))) for p in paid)


async def test_a_killed_run_counts_its_last_bound_as_spent(tmp_path: Path) -> None:
    """A hold record is on disk before a call is sent; with no finish after it (killed),
    resume counts it as spent."""
    provider = ScriptedProvider()
    provider.gate = anyio.Event()
    run = make_run(tmp_path, items(8), workers=4, max_cost=1.0)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 4)
        holds = [r for r in log.read_records(run.log_path) if r["k"] == "hold"]
        at_kill = log.scan(run.log_path)  # the log as a SIGKILL now would leave it
        provider.gate.set()
    assert holds and outcome
    in_flight = sum(worst_case(r) for r in provider.requests[:4])
    assert at_kill.cost_usd >= in_flight
    assert at_kill.cost_usd == pytest.approx(max(h["upto_usd"] for h in holds))


async def test_a_killed_run_near_its_cap_counts_no_more_than_the_cap(tmp_path: Path) -> None:
    """The bound on disk runs ahead of need, but never past the cap: a run killed with its
    last calls in flight resumed 'passed by $0.0006: a provider billed more tokens than the
    requests allowed' when nothing was billed past a limit."""
    one = await one_item_reserves(tmp_path)
    cap = 4.5 * one  # four calls in flight fill it
    provider = ScriptedProvider()
    provider.gate = anyio.Event()
    run = make_run(tmp_path, items(8), workers=4, max_cost=cap)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 4)
        at_kill = log.scan(run.log_path)  # the log as a SIGKILL now would leave it
        provider.gate.set()
    assert outcome
    assert 4 * one <= at_kill.cost_usd <= cap


async def test_an_items_cap_counts_paid_attempts_a_kill_left_without_a_result(
    tmp_path: Path,
) -> None:
    """A kill between a paid attempt and its item's result leaves a paid record and no
    result: on resume the item's cap has that much less room (before: it started afresh)."""
    first = ScriptedProvider()
    run = make_run(tmp_path, items(2), max_items=1)
    await execute(run, first)
    one = worst_case(first.requests[0])
    writer = log.LogWriter.open_append(run.log_path, durability="flush")
    writer.write_group(
        [
            log.encode(log.session_record(resumed=True)),
            log.encode(log.paid_record(MODEL, "item-1", 1, 0.75 * one, Usage(100, 10))),
        ]  # the attempt's retry was sent when the kill came
    )
    writer.close()
    assert log.item_spend(run.log_path)["item-1"] == pytest.approx(0.75 * one)
    again = ScriptedProvider()
    await execute(Run.open(run.run_dir).for_resume(max_item_cost=one), again)
    [result] = [r for r in log.iter_results(run.log_path) if r.id == "item-1"]
    [sent] = again.requests
    assert result.status == "ok"
    assert sent.max_tokens < first.requests[0].max_tokens  # fitted to the quarter left
    assert worst_case(sent) <= 0.25 * one + 1e-9


async def test_one_models_item_cap_counts_what_its_earlier_results_cost_on_retry(
    tmp_path: Path,
) -> None:
    """With one model as with several, --retry-failed gives a failed item what its cap has
    left, not a fresh cap each time (before: three retries of one item spent 3x its cap)."""
    invalid = ScriptedProvider(lambda r: CallResult("not json", Usage(100, r.max_tokens)))
    run = make_run(tmp_path, items(1), output_schema={"type": "object"}, retry={"retries": 0})
    await execute(run, invalid)
    [failed] = log.iter_results(run.log_path)
    assert failed.status == "failed" and failed.cost_usd > 0
    cap = 1.5 * failed.cost_usd
    again = ScriptedProvider(lambda r: CallResult("not json", Usage(100, r.max_tokens)))
    resumed = Run.open(run.run_dir).for_resume(max_item_cost=cap)
    await execute(resumed, again, retry_failed=True)
    [sent] = again.requests
    assert worst_case(sent) <= cap - failed.cost_usd + 1e-12  # what the cap had left
    [retried] = log.iter_results(run.log_path)
    assert failed.cost_usd + retried.cost_usd <= cap
    await execute(Run.open(run.run_dir).for_resume(max_item_cost=cap), again, retry_failed=True)
    [last] = log.iter_results(run.log_path)
    assert last.status == "skipped" and last.error is not None and last.error.kind == "budget"
