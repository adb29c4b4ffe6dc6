"""A pipeline's steps in batch mode through the real CLI on simulate: a batch step between
two online ones, a judge that goes batch, and a SIGKILL loop mid-pipeline (the fake
server's case, with the response cache, is in tests/integration/test_batch_providers.py).

simulate keeps its jobs in the run dir, outside the process, as a provider does, and can
say every custom_id it ever accepted: no request may be in two jobs.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from engine import log
from engine._prices import PriceTable
from engine._results import ItemResult
from engine.providers._sim_batch import accepted_custom_ids
from tests.cli import batchdeck, kill_repeatedly

MINI, HAIKU = "simulate:gpt-4o-mini", "simulate:claude-haiku-4-5"

MIDDLE_BATCH = f"""
[[step]]
name = "extract"
model = "{MINI}"
prompt = "List what this ticket is about: {{context}}"

[[step]]
name = "classify"
model = "{MINI}@batch"
prompt = "Label this ticket: {{extract.output}}"

[[step]]
name = "summarise"
model = "{HAIKU}"
prompt = "Summarise for the {{classify.output}} queue: {{extract.output}}"
"""
LANES = ("extract/" + MINI, f"classify/{MINI}@batch", "summarise/" + HAIKU)
FAST = ("--sim-latency-ms", "0", "--poll-s", "0.1")


def setup(tmp_path: Path, count: int) -> tuple[Path, Path]:
    source = tmp_path / "items.jsonl"
    rows = (orjson.dumps({"id": f"t{i:04d}", "context": f"ticket {i}"}) for i in range(count))
    source.write_bytes(b"".join(row + b"\n" for row in rows))
    steps = tmp_path / "run.toml"
    steps.write_text(MIDDLE_BATCH)
    return source, steps


def results(run_dir: Path) -> list[ItemResult]:
    records = log.read_records(run_dir / "log.jsonl")
    return [log.result_from_record(r) for r in records if r["k"] == "result"]


def one_result_per_lane(run_dir: Path, count: int, lanes: tuple[str, ...]) -> list[ItemResult]:
    logged = results(run_dir)
    pairs = Counter((r.model, r.id) for r in logged)
    assert {model for model, _ in pairs} == set(lanes)
    assert len(pairs) == count * len(lanes) and set(pairs.values()) == {1}
    return logged


def accepted_lines(run_dir: Path) -> Counter[str]:
    """How many jobs accepted each input line (custom ids are ``j<job>-l<line>``)."""
    ids = accepted_custom_ids(run_dir / "sim-batches")
    assert len(ids) == len(set(ids)), "a custom_id was accepted twice"
    return Counter(re.sub(r"^j\d+-", "", custom_id) for custom_id in ids)


def price(model: str, *, batch: bool) -> object:
    found = PriceTable.load().lookup(model)
    assert found is not None
    return found.batch() if batch else found


def test_a_batch_step_between_two_online_steps(tmp_path: Path) -> None:
    """Every item goes through all three steps; the middle one's answers come from batch
    jobs (of whatever items were ready, within --batch-size) at the batch price, and the
    step after it reads them."""
    count = 120
    (source, steps), run_dir = setup(tmp_path, count), tmp_path / "run"
    done = batchdeck(
        "run", str(source), "--pipeline", str(steps), *FAST, "--sim-batch-s", "0.2",
        "--batch-size", "50", "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = one_result_per_lane(run_dir, count, LANES)
    assert all(r.status == "ok" for r in logged)
    online, batch = price(MINI, batch=False), price(MINI, batch=True)
    for r in logged:
        paid = batch if r.model == LANES[1] else online if r.model == LANES[0] else None
        if paid is not None:
            assert r.cost_usd == paid.cost(r.usage)  # type: ignore[attr-defined]
    classified = {r.id: r.output for r in logged if r.model == LANES[1]}
    summaries = [r for r in logged if r.model == LANES[2]]
    assert all(classified[r.id] and classified[r.id].split()[-1] in r.output for r in summaries)
    jobs = log.scan(run_dir / "log.jsonl").batches.values()
    assert len(jobs) >= 3 and all(job.closed and len(job.items) <= 50 for job in jobs)
    assert {job.model for job in jobs} == {LANES[1]}
    assert set(accepted_lines(run_dir).values()) == {1}
    assert "batch prices saved $" in done.stderr


def test_a_judge_that_goes_batch(tmp_path: Path) -> None:
    source, _ = setup(tmp_path, 20)
    run_dir = tmp_path / "run"
    done = batchdeck(
        "run", str(source), "--model", MINI, "--model", HAIKU, "--judge", "simulate:gpt-4o@batch",
        *FAST, "--sim-batch-s", "0.2", "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lanes = (f"answer/{MINI}", f"answer/{HAIKU}", "judge/simulate:gpt-4o@batch")
    logged = one_result_per_lane(run_dir, 20, lanes)
    judged = [r for r in logged if r.model == lanes[2]]
    batch = price("simulate:gpt-4o", batch=True)
    assert all(r.status == "ok" and r.parsed["confidence"] for r in judged)
    assert all(r.cost_usd == batch.cost(r.usage) for r in judged)  # type: ignore[attr-defined]
    assert len(accepted_custom_ids(run_dir / "sim-batches")) == 20


def test_a_batch_judge_after_a_debate_waits_for_every_item_it_can_take(tmp_path: Path) -> None:
    """Workers hand the judge's lanes on one by one as each item's debate ends: the chunk
    goes out once none is on its way, not with the first (it went out with one item each,
    one job after another)."""
    source, _ = setup(tmp_path, 60)
    run_dir = tmp_path / "run"
    done = batchdeck(
        "run", str(source), "--model", MINI, "--model", HAIKU, "--debate",
        "--judge", "simulate:gpt-4o@batch", *FAST, "--sim-batch-s", "0.2",
        "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    jobs = log.scan(run_dir / "log.jsonl").batches.values()
    assert len(jobs) <= 2 and sum(len(job.items) for job in jobs) == 60


def test_a_try_runs_a_batch_step_online(tmp_path: Path) -> None:
    """A try answers in seconds: its batch step goes online (a job may take hours)."""
    source, steps = setup(tmp_path, 10)
    tried = batchdeck(
        "try", str(source), "--n", "3", "--pipeline", str(steps), *FAST, home=tmp_path
    )
    assert tried.returncode == 0, tried.stderr
    assert tried.stdout.count(f"  classify {MINI}: ") == 3


def test_the_estimate_prices_a_batch_step_at_the_batch_price(tmp_path: Path) -> None:
    source, steps = setup(tmp_path, 20)
    done = batchdeck("estimate", str(source), "--pipeline", str(steps), home=tmp_path)
    assert done.returncode == 0, done.stderr
    costs = {
        line.split()[1].rstrip(":"): line
        for line in done.stdout.splitlines()
        if line.startswith("cost")
    }
    pattern = (
        r"what the cap reserves\) (online|batch); ~\$[\d.]+ likely, \$[\d.]+ to \$[\d.]+ (\w+)"
    )
    modes = {lane: re.search(pattern, line) for lane, line in costs.items()}
    assert {lane: (m[1], m[2]) for lane, m in modes.items() if m} == {
        LANES[0]: ("online", "batch"),
        LANES[1]: ("batch", "online"),
        LANES[2]: ("online", "batch"),
    }


@pytest.mark.timeout(120)
def test_sigkill_mid_pipeline_with_a_batch_step(tmp_path: Path) -> None:
    """Killed at random instants while the first step runs online, the middle step's jobs
    are submitted and followed and the last step runs on their answers, then resumed to the
    end: every item has one result per lane, each from its first unfinished step on, and
    no request was accepted by two jobs."""
    count = 200
    (source, steps), run_dir = setup(tmp_path, count), tmp_path / "run"
    args: tuple[str, ...] = (
        "run", str(source), "--pipeline", str(steps), "--sim-latency-ms", "2",
        "--poll-s", "0.1", "--sim-batch-s", "0.8", "--batch-size", "30",
        "--max-parallel-batches", "2", "--workers", "4", "--run-dir", str(run_dir),
    )  # fmt: skip
    kill_repeatedly(args, run_dir, home=tmp_path, kills=4, at_least=2, within=(0.05, 1.0), seed=5)
    done = batchdeck("resume", str(run_dir), home=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    logged = one_result_per_lane(run_dir, count, LANES)
    assert all(r.status == "ok" for r in logged)
    lines = accepted_lines(run_dir)
    assert len(lines) == count and set(lines.values()) == {1}
    assert all(job.closed for job in log.scan(run_dir / "log.jsonl").batches.values())
