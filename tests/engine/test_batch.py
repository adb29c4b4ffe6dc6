"""Provider batch jobs end to end on simulate: chunking, intents, money, re-attaching.

simulate's batch API keeps its jobs in the run dir (``sim-batches``), as a provider
keeps them on its side: a job outlives the execution that submitted it, and a test can
make it expire or look at every custom_id it ever accepted.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from engine import log
from engine._batch import next_job_number
from engine._errors import ConfigError, ProviderError
from engine._events import (
    BatchJobEnded,
    BatchJobProgressed,
    BatchJobSubmitted,
    CapReached,
    CostUpdated,
    ItemFinished,
    RunFailed,
)
from engine._paths import SUMMARY_NAME
from engine._prices import PriceTable
from engine._results import ItemResult, Usage
from engine._run import SIM_BATCH_DIR, Run
from engine._runs import summarize
from engine.providers import CallResult
from engine.providers._batchhttp import CLOCK_SLACK_S
from engine.providers._sim_batch import JOB_FILE, accepted_custom_ids
from engine.providers.simulate import SimulateProvider
from tests.engine.scripted import execute, items, make_run, until

pytestmark = pytest.mark.anyio

MODEL = "simulate:gpt-4o-mini"
FAST: dict[str, Any] = {"latency_ms": 0, "batch_s": 0.05}


def price() -> Any:
    found = PriceTable.load().lookup(MODEL)
    assert found is not None
    return found


def results(run: Run) -> list[ItemResult]:
    return [log.result_from_record(r) for r in log.read_records(run.log_path) if r["k"] == "result"]


def store(run: Run) -> Path:
    return run.run_dir / SIM_BATCH_DIR


def jobs_in_store(run: Run) -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted(store(run).glob(f"*/{JOB_FILE}"))]


async def test_ten_thousand_items_come_back_at_the_batch_price(tmp_path: Path) -> None:
    run = make_run(
        tmp_path, items(10_000), batch=True, batch_size=3000, max_parallel_batches=2,
        poll_s=0.02, sim=FAST,
    )  # fmt: skip
    finished, events = await execute(run)
    assert (finished.state, finished.ok, finished.remaining) == ("finished", 10_000, 0)
    logged = results(run)
    assert len(logged) == 10_000 and {r.id for r in logged} == {f"item-{i}" for i in range(10_000)}
    batch, online = price().batch(), price()
    assert batch.input == online.input / 2 and batch.output == online.output / 2
    for result in logged:
        assert result.status == "ok" and result.usage.input_tokens > 0
        assert result.cost_usd == batch.cost(result.usage)
    assert finished.cost_usd == pytest.approx(sum(r.cost_usd for r in logged), abs=1e-9)
    saved = sum(online.cost(r.usage) - batch.cost(r.usage) for r in logged)
    assert finished.batch_saved_usd == pytest.approx(saved) and saved > 0
    jobs = list(log.scan(run.log_path).batches.values())
    assert [len(job.items) for job in jobs] == [3000, 3000, 3000, 1000]
    assert all(job.closed and job.state == "ended" and job.job_id for job in jobs)
    # A job is closed on disk only behind its last result (resume fetches no more of a
    # closed job): with 3,000 results a job and groups of at most 1,024, a record queued
    # beside the results (not behind them) went out first.
    records = list(log.read_records(run.log_path))
    where = {r["head"][1]: at for at, r in enumerate(records) if r["k"] == "result"}
    for job in jobs:
        closed_at = next(
            at for at, r in enumerate(records)
            if r["k"] == "batch" and r["token"] == job.token and r.get("closed")
        )  # fmt: skip
        assert max(where[entry.id] for entry in job.items) < closed_at
    accepted = accepted_custom_ids(store(run))
    assert len(accepted) == len(set(accepted)) == 10_000
    submitted = [e for e in events if isinstance(e, BatchJobSubmitted)]
    ended = [e for e in events if isinstance(e, BatchJobEnded)]
    assert len(submitted) == len(ended) == 4 and sum(len(e.ids) for e in submitted) == 10_000
    assert any(isinstance(e, BatchJobProgressed) for e in events)
    assert sum(isinstance(e, ItemFinished) for e in events) == 10_000


async def test_each_intent_is_on_disk_before_its_job_exists(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(30), batch=True, batch_size=10, poll_s=0.02, sim=FAST)
    await execute(run)
    records = list(log.read_records(run.log_path))
    created = {job["token"]: job["created_at"] for job in jobs_in_store(run)}
    intents = [r for r in records if r["k"] == "batch" and "items" in r]
    assert len(intents) == len(created) == 3
    for intent in intents:
        assert intent["state"] == "submitting" and intent["t"] <= created[intent["token"]]
        assert len(intent["items"]) == 10


async def test_failed_requests_are_failed_results_with_their_kind(tmp_path: Path) -> None:
    sim = {**FAST, "failure_rate": 0.2}
    run = make_run(tmp_path, items(200), batch=True, poll_s=0.02, sim=sim)
    finished, _ = await execute(run)
    logged = results(run)
    failed = [r for r in logged if r.status == "failed"]
    assert 10 < len(failed) < 80 and finished.failed == len(failed)
    assert {r.error.kind for r in failed if r.error} == {"server_error"}
    assert sum(job["failing"].__len__() for job in jobs_in_store(run)) == len(failed)


async def test_a_job_that_expires_half_done_finishes_on_resume(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(100), batch=True, sim={"latency_ms": 0, "batch_s": 100})
    first, _ = await execute(run, detach=True)
    assert first.state == "stopped" and first.batch_jobs_left == 1 and first.ok == 0
    (job,) = jobs_in_store(run)
    now = time.time()  # the job worked half its time, then its window closed
    job.update(created_at=now - 50, expires_at=now)
    (store(run) / job["id"] / JOB_FILE).write_bytes(orjson.dumps(job))

    again = Run.open(run.run_dir).for_resume(sim_batch_s=0.05, poll_s=0.02)
    finished, events = await execute(again)
    assert (finished.state, finished.ok, finished.remaining) == ("finished", 100, 0)
    ended = [e for e in events if isinstance(e, BatchJobEnded)]
    assert [(e.job.state, e.unfinished) for e in ended] == [("expired", 50), ("ended", 0)]
    pairs = Counter((r.model, r.id) for r in results(run))
    assert len(pairs) == 100 and set(pairs.values()) == {1}
    assert all(not job.open for job in log.scan(run.log_path).batches.values())


async def test_a_capped_run_submits_smaller_jobs_and_never_passes_the_cap(tmp_path: Path) -> None:
    (tmp_path / "probe").mkdir()
    probe = make_run(tmp_path / "probe", items(1), batch=True, sim=FAST, poll_s=0.02)
    await execute(probe)
    (one,) = log.scan(probe.log_path).batches.values()
    worst = one.items[0][3] / 1e12  # what one item reserves at the batch price
    cap = worst * 30.5
    run = make_run(
        tmp_path, items(100), batch=True, sim=FAST, poll_s=0.02, max_cost=cap
    )  # fmt: skip
    finished, _ = await execute(run)
    jobs = list(log.scan(run.log_path).batches.values())
    assert len(jobs[0].items) == 30 and len(jobs) > 1
    assert finished.cost_usd <= cap
    assert sum(r.cost_usd for r in results(run)) <= cap
    assert finished.ok == 100 or finished.state == "capped"


async def test_a_job_that_cannot_be_told_apart_stops_the_resume_in_one_line(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, items(5), batch=True, sim={"latency_ms": 0, "batch_s": 100})
    await execute(run, detach=True)
    (job,) = jobs_in_store(run)
    token = job["token"]
    twin = {**job, "id": "simbatch_twin"}  # a second job created with the same token
    (store(run) / "simbatch_twin").mkdir()
    (store(run) / "simbatch_twin" / JOB_FILE).write_bytes(orjson.dumps(twin))
    # The kill came before the job id was logged: only the intent is there.
    lines = run.log_path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if b'"job":' not in line or b'"items":' in line]
    run.log_path.write_bytes(b"".join(kept))
    with pytest.raises(ConfigError) as caught:
        await execute(Run.open(run.run_dir))
    message = str(caught.value)
    assert "\n" not in message and job["id"] in message and "simbatch_twin" in message
    assert len(jobs_in_store(run)) == 2  # nothing submitted meanwhile
    (intent,) = log.scan(run.log_path).batches.values()
    assert intent.token == token and intent.job_id is None


async def test_a_job_created_before_a_kill_is_found_by_its_token(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(5), batch=True, sim={"latency_ms": 0, "batch_s": 0})
    await execute(run, detach=True)
    lines = run.log_path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if b'"job":' not in line or b'"items":' in line]
    run.log_path.write_bytes(b"".join(kept))
    finished, _ = await execute(Run.open(run.run_dir).for_resume(poll_s=0.02))
    assert (finished.ok, finished.remaining) == (5, 0)
    assert len(jobs_in_store(run)) == 1  # found, not submitted again


async def test_a_model_spec_chooses_batch_or_online_per_model(tmp_path: Path) -> None:
    run = make_run(
        tmp_path, items(20), models=(f"{MODEL}@batch", f"{MODEL}@online"), poll_s=0.02, sim=FAST
    )
    finished, _ = await execute(run)
    assert finished.ok == 40
    by_model = Counter(r.model for r in results(run))
    assert by_model == {f"{MODEL}@batch": 20, f"{MODEL}@online": 20}
    costs = {r.model: r.cost_usd for r in results(run) if r.id == "item-3"}
    assert costs[f"{MODEL}@batch"] == pytest.approx(costs[f"{MODEL}@online"] / 2)
    (job,) = log.scan(run.log_path).batches.values()
    assert job.model == f"{MODEL}@batch" and len(job.items) == 20


async def test_stragglers_are_cancelled_and_finished_online(tmp_path: Path) -> None:
    run = make_run(
        tmp_path, items(40), batch=True, poll_s=0.02, finish_online_after=0.01,
        sim={"latency_ms": 0, "batch_s": 3600},
    )  # fmt: skip
    finished, events = await execute(run)
    assert (finished.state, finished.ok, finished.remaining) == ("finished", 40, 0)
    (ended,) = [e for e in events if isinstance(e, BatchJobEnded)]
    assert ended.job.state == "cancelled" and ended.unfinished == 40
    online = price()
    logged = results(run)
    assert len({r.id for r in logged}) == 40 == len(logged)
    assert all(r.cost_usd == online.cost(r.usage) for r in logged)  # finished online, one log
    assert finished.cost_usd == pytest.approx(sum(r.cost_usd for r in logged))


class LooksCounted:
    """simulate's batch API whose first looks at a job answer 429 with a wait."""

    def __init__(self, api: Any, limited: int, wait_s: float) -> None:
        self._api = api
        self.limits = api.limits
        self._limited = limited
        self._wait_s = wait_s
        self.looks: list[tuple[float, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def status(self, job_id: str) -> Any:
        limited = len(self.looks) < self._limited
        self.looks.append((time.monotonic(), limited))
        if limited:
            raise ProviderError("rate_limited", "429", retry_after=self._wait_s)
        return await self._api.status(job_id)


class WithBatch:
    def __init__(self, provider: Any, api: Any) -> None:
        self._provider = provider
        self.name = provider.name
        self._api = api

    def batch_api(self) -> Any:
        return self._api

    async def call(self, request: Any) -> Any:
        return await self._provider.call(request)

    async def aclose(self) -> None:
        await self._provider.aclose()


async def test_a_rate_limit_on_looking_at_a_job_is_waited_out(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(10), batch=True, poll_s=0.01, sim=FAST)
    sim = SimulateProvider(run.config.sim, batch_store=store(run))
    api = LooksCounted(sim.batch_api(), limited=2, wait_s=0.3)
    finished = await run.execute([], providers={MODEL: WithBatch(sim, api)})
    assert finished.ok == 10
    times = [at for at, _ in api.looks]
    assert [limited for _, limited in api.looks[:3]] == [True, True, False]
    assert all(later - earlier >= 0.3 for earlier, later in zip(times, times[1:3], strict=False))


async def test_pause_holds_submission_back_until_resumed(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(10), batch=True, poll_s=0.01, sim=FAST)
    run.pause()
    events: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run.execute([events.append]))
        await until(lambda: run.log_path.exists() and bool(events))
        await anyio.wait_all_tasks_blocked()
        assert not store(run).exists() or not jobs_in_store(run)  # paused: nothing submitted
        run.resume()
    assert len(jobs_in_store(run)) == 1
    assert sum(isinstance(e, ItemFinished) for e in events) == 10


class BrokenOnce:
    """simulate's batch API whose first reading of results breaks off half way."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.limits = api.limits
        self.readings = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def results(self, job_id: str, lookup: Any) -> Any:
        self.readings += 1
        count = 0
        async for pair in self._api.results(job_id, lookup):
            if self.readings == 1 and count == 5:
                raise ProviderError("connection", "connection reset")
            count += 1
            yield pair


async def test_results_cut_off_on_the_way_are_read_again_without_doubles(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(10), batch=True, poll_s=0.01, sim=FAST, retry={"base_s": 0.01})
    sim = SimulateProvider(run.config.sim, batch_store=store(run))
    api = BrokenOnce(sim.batch_api())
    finished = await run.execute([], providers={MODEL: WithBatch(sim, api)})
    assert (finished.ok, finished.remaining, api.readings) == (10, 0, 2)
    pairs = Counter(r.id for r in results(run))
    assert len(pairs) == 10 and set(pairs.values()) == {1}


async def test_money_held_by_batch_jobs_is_published_until_their_results_settle_it(
    tmp_path: Path,
) -> None:
    run = make_run(
        tmp_path, items(20), batch=True, max_cost=1.0, sim={"latency_ms": 0, "batch_s": 100}
    )
    first, events = await execute(run, detach=True)
    submitted = next(i for i, e in enumerate(events) if isinstance(e, BatchJobSubmitted))
    after = [e for e in events[submitted:] if isinstance(e, CostUpdated)]
    assert after and after[0].batch_usd == after[0].reserved_usd > 0  # all of it is at simulate
    assert first.batch_jobs_left == 1
    assert summarize(run.run_dir).batch_jobs == 1  # from summary.json
    (run.run_dir / SUMMARY_NAME).unlink()
    assert summarize(run.run_dir).batch_jobs == 1  # from the log

    again = Run.open(run.run_dir).for_resume(sim_batch_s=0.05, poll_s=0.02)
    store_jobs = jobs_in_store(again)
    for job in store_jobs:  # it ends now
        job.update(created_at=time.time() - 200)
        (store(again) / job["id"] / JOB_FILE).write_bytes(orjson.dumps(job))
    finished, events = await execute(again)
    costs = [e for e in events if isinstance(e, CostUpdated)]
    assert all(e.batch_usd >= 0 for e in costs)  # what it settles was carried in
    assert (finished.ok, costs[-1].batch_usd, costs[-1].reserved_usd) == (20, 0.0, 0.0)
    assert summarize(run.run_dir).batch_jobs == 0


async def test_cancel_batch_jobs_asks_the_provider_and_leaves_the_items_pending(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, items(10), batch=True, sim={"latency_ms": 0, "batch_s": 100})
    await execute(run, detach=True)
    asked = await run.cancel_batch_jobs()
    assert [(job.model, refused) for job, refused in asked] == [(MODEL, None)]
    assert await run.cancel_batch_jobs() != []  # the log knows it open until a resume reads it
    again = Run.open(run.run_dir).for_resume(poll_s=0.02)
    finished, events = await execute(again, detach=True)
    ended = [e for e in events if isinstance(e, BatchJobEnded)]
    assert [e.job.state for e in ended][:1] == ["cancelled"] and ended[0].unfinished == 10


async def test_a_job_re_attached_is_published_with_the_items_still_in_it(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(10), batch=True, sim={"latency_ms": 0, "batch_s": 100})
    await execute(run, detach=True)
    finished, events = await execute(Run.open(run.run_dir).for_resume(), detach=True)
    (again,) = [e for e in events if isinstance(e, BatchJobSubmitted)]
    assert set(again.ids) == {f"item-{i}" for i in range(10)} and again.job.state == "running"
    assert finished.batch_jobs_left == 1


class Overbilled:
    """simulate's batch API whose results report ``factor`` times the output produced."""

    def __init__(self, api: Any, factor: int) -> None:
        self._api = api
        self.limits = api.limits
        self._factor = factor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def results(self, job_id: str, lookup: Any) -> Any:
        async for custom_id, outcome in self._api.results(job_id, lookup):
            if isinstance(outcome, CallResult):
                usage = outcome.usage
                billed = Usage(usage.input_tokens, usage.output_tokens * self._factor)
                outcome = replace(outcome, usage=billed)
            yield custom_id, outcome


async def test_results_billed_past_the_cap_stop_the_chunks_not_yet_submitted(
    tmp_path: Path,
) -> None:
    (tmp_path / "probe").mkdir()
    probe = make_run(tmp_path / "probe", items(1), batch=True, sim=FAST, poll_s=0.02)
    await execute(probe)
    (one,) = log.scan(probe.log_path).batches.values()
    cap = one.items[0][3] / 1e12 * 25.5  # 25 reservations: three chunks of 10, 10, 5
    run = make_run(
        tmp_path, items(100), batch=True, sim=FAST, poll_s=0.02, max_cost=cap, batch_size=10,
        max_parallel_batches=1,
    )  # fmt: skip
    sim = SimulateProvider(run.config.sim, batch_store=store(run))
    events: list[Any] = []
    api = Overbilled(sim.batch_api(), factor=1000)
    finished = await run.execute([events.append], providers={MODEL: WithBatch(sim, api)})
    assert len(jobs_in_store(run)) == 1  # the first job's results spent it all: no more
    assert finished.state == "capped" and finished.cost_usd > cap
    assert len(results(run)) == 10 and finished.remaining == 90
    assert any(isinstance(e, CapReached) for e in events)  # the first cap's word is kept
    assert finished.overspent_usd == pytest.approx(finished.cost_usd - cap)
    state = log.scan(run.log_path)
    assert all(job.closed for job in state.batches.values())
    assert state.cost_usd == pytest.approx(finished.cost_usd)


class Tokenless:
    """simulate's batch API found as Anthropic's is, with no token: every job created since,
    of the same size; ``refused`` creates fail (retryably) before any job is made."""

    def __init__(self, api: Any, run: Run, refused: frozenset[int] = frozenset()) -> None:
        self._api = api
        self._run = run
        self.limits = api.limits
        self._refused = refused
        self.submits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def submit(self, requests: Any, *, token: str) -> Any:
        self.submits += 1
        if self.submits in self._refused:
            raise ProviderError("server_error", "HTTP 500: overloaded")
        return await self._api.submit(requests, token=token)

    async def find(self, token: str, *, since: float, count: int) -> list[Any]:
        made = [job for job in jobs_in_store(self._run) if job["count"] == count]
        since -= CLOCK_SLACK_S  # as Anthropic's adapter allows for the provider's clock
        return [await self._api.status(job["id"]) for job in made if job["created_at"] >= since]


def tokenless(run: Run, refused: frozenset[int] = frozenset()) -> dict[str, Any]:
    sim = SimulateProvider(run.config.sim, batch_store=store(run))
    return {MODEL: WithBatch(sim, Tokenless(sim.batch_api(), run, refused))}


async def test_a_job_found_by_size_alone_is_never_one_the_log_already_holds(
    tmp_path: Path,
) -> None:
    run = make_run(
        tmp_path, items(15), batch=True, batch_size=5, sim={"latency_ms": 0, "batch_s": 100}
    )
    await run.execute([], providers=tokenless(run), detach=True)
    first, second, third = jobs_in_store(run)
    # The kill came before the third job's id was logged: its intent alone is there.
    lines = run.log_path.read_bytes().splitlines(keepends=True)
    lost = [line for line in lines if third["id"].encode() in line]
    run.log_path.write_bytes(b"".join(line for line in lines if line not in lost))
    again = Run.open(run.run_dir)
    await again.execute([], providers=tokenless(again), detach=True)
    jobs = log.scan(run.log_path).batches.values()
    made = sorted(job["id"] for job in (first, second, third))
    assert sorted(job.job_id or "" for job in jobs) == made
    assert len(jobs_in_store(run)) == 3  # adopted, not submitted again


async def test_a_failed_create_never_takes_an_earlier_job_of_the_same_size_for_its_own(
    tmp_path: Path,
) -> None:
    run = make_run(
        tmp_path, items(15), batch=True, batch_size=5, poll_s=0.02, sim=FAST,
        retry={"retries": 2, "base_s": 0.0, "cap_s": 0.0},
    )  # fmt: skip
    finished = await run.execute([], providers=tokenless(run, refused=frozenset({2})))
    assert (finished.state, finished.ok, finished.remaining) == ("finished", 15, 0)
    ids = [job.job_id for job in log.scan(run.log_path).batches.values()]
    assert len(ids) == len(set(ids)) == len(jobs_in_store(run)) == 3


class Unreadable:
    """simulate's batch API whose ``broken`` method ("status" or "results") always fails
    with ``error``."""

    def __init__(self, api: Any, broken: str, error: ProviderError) -> None:
        self._api = api
        self.limits = api.limits
        self._broken = broken
        self._error = error
        self.tries = 0

    def __getattr__(self, name: str) -> Any:
        if name != self._broken:
            return getattr(self._api, name)

        async def broken(*args: Any) -> Any:
            self.tries += 1
            raise self._error

        async def broken_stream(*args: Any) -> Any:
            await broken()
            yield  # pragma: no cover

        return broken_stream if name == "results" else broken


@pytest.mark.parametrize(
    ("broken", "error", "said"),
    [
        ("status", ProviderError("bad_response", "unexpected batch reply from x"), "unexpected"),
        ("results", ProviderError("server_error", "HTTP 500: boom"), "results not read: HTTP 500"),
    ],
)
async def test_a_job_its_provider_never_answers_for_fails_the_run_in_one_line(
    tmp_path: Path, broken: str, error: ProviderError, said: str
) -> None:
    run = make_run(tmp_path, items(10), batch=True, poll_s=0.01, sim=FAST)
    sim = SimulateProvider(run.config.sim, batch_store=store(run))
    api = Unreadable(sim.batch_api(), broken, error)
    events: list[Any] = []
    finished = await run.execute([events.append], providers={MODEL: WithBatch(sim, api)})
    [failed] = [e for e in events if isinstance(e, RunFailed)]
    (job,) = jobs_in_store(run)
    assert finished.state == "failed" and job["id"] in failed.message and said in failed.message
    assert "\n" not in failed.message and api.tries == run.config.retry.retries + 1
    assert not results(run)
    again = Run.open(run.run_dir).for_resume(poll_s=0.01)
    finished, _ = await execute(again)  # the job stayed open: resume reads its results
    assert (finished.ok, finished.remaining, len(jobs_in_store(run))) == (10, 0, 1)


async def test_an_online_item_waiting_for_money_sends_the_batch_chunk_out_first(
    tmp_path: Path,
) -> None:
    """One run, one meter: the online model's next item cannot fit while the batch model's
    chunk, still filling, holds the money; the chunk goes out, so its money comes back."""
    (tmp_path / "probe").mkdir()
    probe = make_run(tmp_path / "probe", items(1), batch=True, sim=FAST, poll_s=0.02)
    await execute(probe)
    (one,) = log.scan(probe.log_path).batches.values()
    cap = one.items[0][3] / 1e12 * 60.5  # gpt-4o online reserves ~33 times as much
    run = make_run(
        tmp_path, items(60), models=(f"{MODEL}@batch", "simulate:gpt-4o@online"), poll_s=0.02,
        sim=FAST, max_cost=cap,
    )  # fmt: skip
    with anyio.fail_after(60):
        finished, _ = await execute(run)
    pairs = Counter((r.model, r.id) for r in results(run))
    assert set(pairs.values()) == {1} and finished.ok == len(pairs) > 20
    assert finished.cost_usd <= cap


def test_a_new_execution_numbers_its_jobs_past_every_token_in_the_log() -> None:
    """A stop can drop a chunk that had its number (14) while a later one (15) was logged:
    counting the jobs (1 to 13, and 15) gave 15 again, a token two jobs shared, which hid
    the first job: its results were never fetched and its items were sent again."""
    run = "20261204-140000-ab12"
    assert next_job_number([f"batchdeck-{run}-13", f"batchdeck-{run}-15"]) == 16
    assert next_job_number([]) == 1
    assert next_job_number([f"batchdeck-{run}-2", "a token of another tool"]) == 3
