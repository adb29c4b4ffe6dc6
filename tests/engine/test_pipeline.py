"""Pipelines in the engine: items go through the steps one by one, a failure stops an item at
its step, a retry reruns failed steps only, and the cost cap holds over random step graphs."""

from __future__ import annotations

import math
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import log
from engine._errors import ProviderError
from engine._events import CostUpdated, ItemFinished
from engine._lanes import lane_keys
from engine._prices import Price
from engine._results import ItemResult, Usage
from engine._run import _answers_in_log, _skipper, _unfinished
from engine._steps import (
    NO_OTHER_ANSWER,
    REVISE_OPENING,
    THEIR_ANSWERS,
    YOUR_ANSWER,
    StepSpec,
    build_graph,
    debate_steps,
    label,
    prompt_bound,
)
from engine._template import PromptTemplate, render_item
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, execute, items, make_run

pytestmark = pytest.mark.anyio

THREE = (
    StepSpec(name="extract", models=("simulate:gpt-4o-mini",), prompt="extract: {context}"),
    StepSpec(
        name="classify", models=("simulate:gpt-4o-mini",), prompt="classify: {extract.output}"
    ),
    StepSpec(
        name="summarise",
        models=("simulate:gpt-4o-mini",),
        prompt="summarise: {classify.output} / {extract.output}",
    ),
)


def pipeline(
    tmp_path: Path,
    rows: int | list[dict[str, Any]],
    steps: tuple[StepSpec, ...] = THREE,
    **config: Any,
) -> Any:
    """A run of ``steps`` over ``rows`` (or that many items)."""
    models = tuple(dict.fromkeys(m for step in steps for m in step.models))
    given = items(rows) if isinstance(rows, int) else rows
    return make_run(tmp_path, given, models=models, steps=steps, **config)


def write_prices_of(home: Path, prices: dict[str, Price]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    models = {model: {"input": p.input, "output": p.output} for model, p in prices.items()}
    (home / "config" / "prices.json").write_bytes(orjson.dumps({"models": models}))


def results(run: Any) -> dict[tuple[str, str], ItemResult]:
    return {(r.model, r.id): r for r in log.iter_results(run.log_path)}


async def test_each_step_reads_the_answers_before_it(tmp_path: Path) -> None:
    run = pipeline(tmp_path, 5)
    finished, _ = await execute(run, ScriptedProvider())
    assert (finished.state, finished.ok, finished.remaining) == ("finished", 15, 0)
    got = results(run)
    summary = got[("summarise/simulate:gpt-4o-mini", "item-3")].output
    assert summary == "echo summarise: echo classify: echo extract: text number 3 / " + (
        "echo extract: text number 3"
    )


async def test_an_item_goes_on_to_its_next_step_without_waiting_for_the_others(
    tmp_path: Path,
) -> None:
    """Item 1's first step answers only once item 0 has reached its third: stage by stage,
    this run could never end."""
    reached = anyio.Event()

    class Streaming(ScriptedProvider):
        async def call(self, request: CallRequest) -> CallResult:
            if request.prompt.startswith("summarise:") and "number 0" in request.prompt:
                reached.set()
            if request.prompt == "extract: text number 1":
                await reached.wait()
            return await super().call(request)

    run = pipeline(tmp_path, 2, workers=4)
    with anyio.fail_after(10):
        finished, _ = await execute(run, Streaming())
    assert finished.ok == 6


async def test_a_time_limit_ends_a_pipeline_with_items_half_way(tmp_path: Path) -> None:
    """At the limit, workers leave the items in their hands unsent without a result: the
    run still ends (it waited for ever for their next steps), capped, resumable."""
    gate = anyio.Event()

    class Slow(ScriptedProvider):
        async def call(self, request: CallRequest) -> CallResult:
            if request.prompt.startswith("classify:"):
                await gate.wait()  # past the limit: each item stops after its first step
            return await super().call(request)

    async def open_gate_late() -> None:
        await anyio.sleep(0.5)
        gate.set()

    run = pipeline(tmp_path, 20, workers=4, time_limit=0.2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_gate_late)
            finished, _ = await execute(run, Slow())
    assert finished.state == "capped" and finished.remaining > 0


async def test_a_failure_stops_its_item_at_that_step_and_the_others_go_on(tmp_path: Path) -> None:
    def script(request: CallRequest) -> CallResult:
        if request.prompt == "classify: echo extract: text number 2":
            raise ProviderError("bad_request", "no such thing")
        return CallResult(f"echo {request.prompt}", Usage(10, 5))

    run = pipeline(tmp_path, 4)
    finished, _ = await execute(run, ScriptedProvider(script))
    assert (finished.ok, finished.failed, finished.skipped, finished.remaining) == (10, 1, 1, 0)
    got = results(run)
    classify = got[("classify/simulate:gpt-4o-mini", "item-2")]
    summarise = got[("summarise/simulate:gpt-4o-mini", "item-2")]
    assert classify.status == "failed" and classify.error is not None
    assert summarise.status == "skipped" and summarise.error is not None
    assert (summarise.error.kind, summarise.error.message) == ("upstream", "classify: bad_request")
    assert got[("summarise/simulate:gpt-4o-mini", "item-3")].status == "ok"

    provider = ScriptedProvider()  # now it answers: the retry sends the failed step and after
    again, _ = await execute(run, provider, retry_failed=True)
    assert (again.ok, again.failed, again.skipped) == (12, 0, 0)
    assert [r.prompt for r in provider.requests] == [
        "classify: echo extract: text number 2",
        "summarise: echo classify: echo extract: text number 2 / echo extract: text number 2",
    ]


async def test_a_resume_continues_each_item_from_its_first_unfinished_step(
    tmp_path: Path,
) -> None:
    """Aborted while item 1 waits in its second step: the resume sends that step and the
    third, and nothing item 0 finished."""
    blocked = anyio.Event()

    class Hangs(ScriptedProvider):
        async def call(self, request: CallRequest) -> CallResult:
            if request.prompt == "classify: echo extract: text number 1":
                blocked.set()
                await anyio.sleep_forever()
            return await super().call(request)

    run = pipeline(tmp_path, 2, workers=2)
    finished: Any = None
    logged = anyio.Event()
    count = 0

    def on(event: Any) -> None:
        nonlocal count
        count += isinstance(event, ItemFinished)
        if count == 4:  # item 0's three steps and item 1's first are in the log
            logged.set()

    async def go() -> None:
        nonlocal finished
        providers = {model: Hangs() for model in run.config.models}
        finished = await run.execute([on], providers=providers)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await blocked.wait()
            await logged.wait()
            run.abort()
    assert finished.remaining == 2
    # What the resume keeps in memory for the later steps: item 1's answer, not item 0's.
    lanes, state = lane_keys(run.config), log.scan(run.log_path)
    unfinished = partial(_unfinished, lanes, _skipper(state, retry_failed=False))
    kept = _answers_in_log(run.log_path, unfinished)
    assert {item: set(answers) for item, answers in kept.items()} == {"item-1": {lanes[0]}}
    provider = ScriptedProvider()
    again, _ = await execute(run, provider)
    assert (again.state, again.ok) == ("finished", 6)
    assert [r.prompt.split(":")[0] for r in provider.requests] == ["classify", "summarise"]


ONLINE_MODELS = [("simulate:capped",), ("simulate:capped", "simulate:dear")]
BATCH_MODELS = [*ONLINE_MODELS, ("simulate:capped@batch",), ("simulate:dear@batch",),
                ("simulate:capped", "simulate:dear@batch")]  # fmt: skip


def _graphs(
    choices: list[tuple[str, ...]] = ONLINE_MODELS,
) -> st.SearchStrategy[tuple[StepSpec, ...]]:
    """One to four steps, each reading some of the steps before it, on one or two models."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[StepSpec, ...]:
        count = draw(st.integers(1, 4))
        steps: list[StepSpec] = []
        for index in range(count):
            models = draw(st.sampled_from(choices))
            reads = [
                f"{{{step.name}.answers}}"
                for step in steps
                if draw(st.booleans())
            ]  # fmt: skip
            steps.append(
                StepSpec(
                    name=f"s{index}",
                    models=models,
                    prompt=f"step {index}: {{context}} " + " ".join(reads),
                    max_tokens=draw(st.none() | st.integers(1, 400)),
                )
            )
        return tuple(steps)

    return build()


prices = st.builds(
    Price, input=st.floats(0.01, 80, allow_nan=False), output=st.floats(0.01, 80, allow_nan=False)
)


def _using(run: Any, calls: list[tuple[float, float, str | None]]) -> tuple[Any, list[Any]]:
    """Run ``run`` where each call answers with the next of ``calls``: what share of its
    prompt's bytes it bills as input, of its output limit as output, and the text (None:
    as many bytes as output tokens billed)."""
    answers = iter(calls * 40)

    def script(request: CallRequest) -> CallResult:
        used_in, used_out, text = next(answers, (1.0, 1.0, None))
        out = math.floor(request.max_tokens * used_out)
        usage = Usage(math.floor(len(request.prompt.encode()) * used_in), out)
        return CallResult("y" * out if text is None else text, usage)

    provider = ScriptedProvider(script)
    events: list[Any] = []
    providers = {model: provider for model in run.config.models}
    return anyio.run(lambda: run.execute([events.append], providers=providers)), events


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    graph=_graphs(),
    cap=st.floats(0.0001, 0.05),
    price=prices,
    dear=prices,
    fractions=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30),
    max_tokens=st.integers(1, 600),
)
def test_random_step_graphs_never_spend_past_the_cap_nor_strand_an_item(
    tmp_path_factory: pytest.TempPathFactory,
    batchdeck_home: Path,
    graph: tuple[StepSpec, ...],
    cap: float,
    price: Price,
    dear: Price,
    fractions: list[tuple[float, float]],
    max_tokens: int,
) -> None:
    """Spending stays within the cap; and since an item's later steps are held when it
    starts, none that started is skipped for want of money on the way (the answers here
    stay within their output limit, in bytes, as the hold assumes)."""
    write_prices_of(batchdeck_home, {"simulate:capped": price, "simulate:dear": dear})
    run = pipeline(tmp_path_factory.mktemp("graph"), 12, graph, max_cost=cap, max_tokens=max_tokens)
    finished, events = _using(run, [(used_in, used_out, None) for used_in, used_out in fractions])
    done = [e.result for e in events if isinstance(e, ItemFinished)]
    assert sum(r.cost_usd for r in done) <= cap
    assert finished.cost_usd <= cap
    assert all(e.spent_usd <= cap for e in events if isinstance(e, CostUpdated))
    assert not [r for r in done if r.error is not None and r.error.kind == "budget"]
    started = {r.id for r in done}
    lanes = sum(len(step.models) for step in graph)
    assert all(sum(r.id == i for r in done) == lanes for i in started)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    graph=_graphs(),
    plain=st.booleans(),
    schema=st.booleans(),
    item_cap=st.floats(0.00001, 0.01),
    price=prices,
    dear=prices,
    calls=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.booleans()), min_size=1, max_size=30
    ),
    max_tokens=st.integers(1, 600),
)
def test_no_item_ever_spends_past_the_item_cap_over_all_its_calls(
    tmp_path_factory: pytest.TempPathFactory,
    batchdeck_home: Path,
    graph: tuple[StepSpec, ...],
    plain: bool,
    schema: bool,
    item_cap: float,
    price: Price,
    dear: Price,
    calls: list[tuple[float, float, bool]],
    max_tokens: int,
) -> None:
    """--max-item-cost caps the sum of an item's calls: every lane of every step (or every
    model of a run with no steps), paid retries of invalid answers included."""
    write_prices_of(batchdeck_home, {"simulate:capped": price, "simulate:dear": dear})
    where = tmp_path_factory.mktemp("item-cap")
    options: dict[str, Any] = {"max_item_cost": item_cap, "max_tokens": max_tokens}
    if schema:
        options["output_schema"] = {"type": "object"}
        graph = tuple(s.model_copy(update={"output_schema": {"type": "object"}}) for s in graph)
    if plain:
        run = make_run(where, items(12), models=("simulate:capped", "simulate:dear"), **options)
    else:
        run = pipeline(where, 12, graph, **options)
    _, events = _using(run, [(i, o, "not json" if bad else "{}") for i, o, bad in calls])
    spent: dict[str, list[float]] = {}
    for event in events:
        if isinstance(event, ItemFinished):
            spent.setdefault(event.result.id, []).append(event.result.cost_usd)
    assert spent
    assert all(math.fsum(costs) <= item_cap + 1e-12 for costs in spent.values()), spent


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    graph=_graphs(BATCH_MODELS),
    cap=st.floats(0.00005, 0.02),
    price=prices,
    dear=prices,
    batch_size=st.none() | st.integers(1, 8),
    max_tokens=st.integers(1, 600),
)
def test_random_step_graphs_with_batch_steps_never_spend_past_the_cap_nor_hang(
    tmp_path_factory: pytest.TempPathFactory,
    batchdeck_home: Path,
    graph: tuple[StepSpec, ...],
    cap: float,
    price: Price,
    dear: Price,
    batch_size: int | None,
    max_tokens: int,
) -> None:
    """Steps mixing batch and online lanes (simulate's batch jobs, chunked small): spending
    stays within the cap, the run ends, and every item that started has one record per lane:
    its later steps were held when it started, at the batch price for batch lanes."""
    write_prices_of(batchdeck_home, {"simulate:capped": price, "simulate:dear": dear})
    run = pipeline(
        tmp_path_factory.mktemp("graph"), 12, graph, max_cost=cap, max_tokens=max_tokens,
        batch_size=batch_size, poll_s=0.02, sim={"latency_ms": 0, "batch_s": 0.02},
    )  # fmt: skip
    events: list[Any] = []

    async def go() -> Any:
        with anyio.fail_after(60):
            return await run.execute([events.append])

    finished = anyio.run(go)
    done = [e.result for e in events if isinstance(e, ItemFinished)]
    assert finished.cost_usd <= cap and sum(r.cost_usd for r in done) <= cap
    assert all(e.spent_usd <= cap for e in events if isinstance(e, CostUpdated))
    lanes = sum(len(step.models) for step in graph)
    started = Counter(r.id for r in done)
    assert set(started.values()) <= {lanes}, started
    assert finished.state == "capped" or len(started) == 12


async def test_a_batch_step_under_a_cap_that_holds_a_few_items_at_a_time(tmp_path: Path) -> None:
    """The next item waits for money that only the batch step's chunk can give back (once its
    job's answers settle): the chunk goes out though the item waiting is not yet sent, and
    every item goes through its three steps."""
    mini = "simulate:gpt-4o-mini"
    steps = (
        THREE[0],
        StepSpec(name="classify", models=(f"{mini}@batch",), prompt="classify: {extract.output}"),
        THREE[2],
    )
    run = pipeline(
        tmp_path, 20, steps, max_cost=0.005, poll_s=0.02, sim={"latency_ms": 0, "batch_s": 0.02}
    )
    with anyio.fail_after(30):
        finished = await run.execute([])
    assert (finished.state, finished.ok) == ("finished", 60)
    assert len(log.scan(run.log_path).batches) > 1


async def test_an_item_without_a_field_a_step_needs_fails_there_and_its_other_steps_run(
    tmp_path: Path,
) -> None:
    """Two first steps: the one the item has the field for runs (though it comes second);
    the other fails
    ``invalid_input``; the step reading both is skipped."""
    steps = (
        StepSpec(name="b", models=("simulate:gpt-4o-mini",), prompt="b: {extra}"),
        StepSpec(name="a", models=("simulate:gpt-4o-mini",), prompt="a: {context}"),
        StepSpec(name="c", models=("simulate:gpt-4o-mini",), prompt="{a.output} {b.output}"),
    )
    rows = [{**row, "extra": "x"} for row in items(3)]
    del rows[1]["extra"]
    run = pipeline(tmp_path, rows, steps)
    finished, _ = await execute(run, ScriptedProvider())
    assert (finished.ok, finished.failed, finished.skipped) == (7, 1, 1)
    got = results(run)
    failed = got[("b/simulate:gpt-4o-mini", "item-1")]
    assert failed.error is not None and failed.error.kind == "invalid_input"
    assert "extra" in failed.error.message
    assert got[("a/simulate:gpt-4o-mini", "item-1")].status == "ok"
    skipped = got[("c/simulate:gpt-4o-mini", "item-1")]
    assert skipped.error is not None and skipped.error.message == "b: invalid_input"


async def test_later_steps_go_before_new_items_once_enough_are_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two items in progress, item i+2 starts only once item i has ended:
    what items in progress hold stays bounded however long the input."""
    monkeypatch.setattr("engine._dispatch.IN_PROGRESS_PER_WORKER", 2)
    run = pipeline(tmp_path, 10, workers=1)
    provider = ScriptedProvider()
    with anyio.fail_after(20):
        finished, _ = await execute(run, provider)
    assert finished.ok == 30
    order = [r.prompt for r in provider.requests]
    for i in range(8):
        started = order.index(f"extract: text number {i + 2}")
        ended = next(n for n, p in enumerate(order) if p.startswith("summarise") and
                     p.endswith(f"number {i}"))  # fmt: skip
        assert ended < started


DEBATERS = ("simulate:a", "simulate:b", "simulate:c")


def debate(judge: bool = True) -> tuple[StepSpec, ...]:
    answer = StepSpec(name="answer", models=DEBATERS, prompt="q: {context}")
    steps = debate_steps(answer)
    if judge:
        steps += (StepSpec(name="judge", models=("simulate:j",), kind="judge"),)
    return steps


def debating(fails: str | None = None) -> ScriptedProvider:
    """First answers say who gave them; revisions say who revised; ``fails`` cannot answer
    first."""

    def script(request: CallRequest) -> CallResult:
        if request.schema is not None:  # the judge
            verdict = {"verdict": "v", "confidence": "high", "reasoning": "r", "best": "simulate:a"}
            return CallResult(orjson.dumps(verdict).decode(), Usage(10, 5))
        if request.prompt.startswith(REVISE_OPENING):
            return CallResult(f"revised by {request.model}", Usage(10, 5))
        if request.model == fails:
            raise ProviderError("bad_request", "no such thing")
        return CallResult(f"first by {request.model} on {request.prompt}", Usage(10, 5))

    return ScriptedProvider(script)


async def test_a_debate_revises_each_answer_once_seeing_the_others_and_the_judge_reads_those(
    tmp_path: Path,
) -> None:
    run = pipeline(tmp_path, 3, debate())
    provider = debating()
    finished, _ = await execute(run, provider)
    assert (finished.state, finished.ok) == ("finished", 3 * 7)
    revisions = [r for r in provider.requests if r.prompt.startswith(REVISE_OPENING)]
    assert len(revisions) == 9
    for request in revisions:
        me = f"simulate:{request.model}"
        task = request.prompt.split("The task:\n", 1)[1].split(YOUR_ANSWER, 1)[0]
        assert task.startswith("q: text number ")
        own, theirs = request.prompt.split(YOUR_ANSWER, 1)[1].split(THEIR_ANSWERS)
        assert own == f"first by {request.model} on {task}"
        assert theirs == "\n\n".join(
            label(other, f"first by {other.split(':')[1]} on {task}")
            for other in DEBATERS
            if other != me
        )
    judged = [r for r in provider.requests if r.schema is not None]
    assert len(judged) == 3
    for request in judged:
        assert "The task:\nq: text number " in request.prompt
        for model in DEBATERS:
            assert label(model, f"revised by {model.split(':')[1]}") in request.prompt
        assert "first by" not in request.prompt
    got = results(run)
    assert got[("answer-revised/simulate:b", "item-1")].output == "revised by b"


async def test_a_model_whose_first_answer_failed_does_not_revise_and_the_others_do(
    tmp_path: Path,
) -> None:
    """b fails its first answer: a and c revise seeing the one other first answer there is;
    b's revision and the judge are skipped, the item stopped at the debate's first step."""
    run = pipeline(tmp_path, 2, debate())
    provider = debating(fails="b")
    finished, _ = await execute(run, provider)
    assert (finished.ok, finished.failed, finished.skipped) == (2 * 4, 2, 2 * 2)
    got = results(run)
    for item in ("item-0", "item-1"):
        for lane in ("answer-revised/simulate:b", "judge/simulate:j"):
            skipped = got[(lane, item)]
            assert skipped.status == "skipped" and skipped.error is not None
            assert (skipped.error.kind, skipped.error.message) == (
                "upstream",
                "answer: bad_request",
            )
        assert got[("answer-revised/simulate:a", item)].status == "ok"
    revisions = {
        r.model: r.prompt for r in provider.requests if r.prompt.startswith(REVISE_OPENING)
    }
    assert set(revisions) == {"a", "c"}
    theirs = revisions["a"].split(THEIR_ANSWERS)[1]
    assert theirs.startswith("--- simulate:c ---\nfirst by c") and "simulate:b" not in theirs


async def test_a_model_alone_to_answer_first_revises_seeing_that_no_other_did(
    tmp_path: Path,
) -> None:
    steps = debate_steps(StepSpec(name="answer", models=DEBATERS[:2], prompt="q: {context}"))
    run = pipeline(tmp_path, 1, steps)
    provider = debating(fails="b")
    await execute(run, provider)
    (revision,) = [r for r in provider.requests if r.prompt.startswith(REVISE_OPENING)]
    assert revision.prompt.endswith(THEIR_ANSWERS + NO_OTHER_ANSWER)


async def test_a_resume_mid_debate_revises_with_the_first_answers_the_log_kept(
    tmp_path: Path,
) -> None:
    """Aborted once every first answer is in and no revision is: the resume sends only the
    revisions and the judge, each revision seeing the others' logged first answers."""
    blocked = anyio.Event()

    class HangsOnRevisions(ScriptedProvider):
        async def call(self, request: CallRequest) -> CallResult:
            if request.prompt.startswith(REVISE_OPENING):
                blocked.set()
                await anyio.sleep_forever()
            return await super().call(request)

    run = pipeline(tmp_path, 1, debate(), workers=3)
    first = debating()
    hangs = HangsOnRevisions(first.script)
    logged = anyio.Event()
    count = 0

    def on(event: Any) -> None:
        nonlocal count
        count += isinstance(event, ItemFinished)
        if count == 3:
            logged.set()

    async def go() -> None:
        await run.execute([on], providers={model: hangs for model in run.config.models})

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await blocked.wait()
            await logged.wait()
            run.abort()
    provider = debating()
    again, _ = await execute(run, provider)
    assert (again.state, again.ok) == ("finished", 7)
    assert sorted(r.model for r in provider.requests) == ["a", "b", "c", "j"]
    revision = next(r for r in provider.requests if r.model == "a")
    assert label("simulate:b", "first by b on q: text number 0") in revision.prompt


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "a", "context": "x" * 300},
        {"id": "b", "context": "short", "prompt": "Own prompt, longer than the run's: " * 9},
    ],
)
def test_a_prompt_read_from_a_first_step_without_one_is_bounded_by_what_it_sends(
    fields: dict[str, Any],
) -> None:
    """``{answer.prompt}`` of a first step with no prompt of its own reads the item's own
    prompt or the run's template rendered: the bound the cap holds before it is sent counts
    it (it counted 0)."""
    graph = build_graph(
        (
            StepSpec(name="answer", models=("simulate:gpt-4o-mini",)),
            StepSpec(name="check", models=("simulate:gpt-4o-mini",), prompt="{answer.prompt}?"),
        )
    )
    run_template = PromptTemplate.parse("Classify: {context}")
    sent = render_item(run_template, fields)
    bound = prompt_bound(graph.step("check"), fields, graph, 64, lambda step: run_template)
    assert bound >= len(f"{sent}?".encode())
