"""Provider batch jobs from the real command line, on simulate: detach, resume, batches,
cancel, refusal, and a SIGKILL loop through submission and polling.

simulate keeps its jobs in the run dir, outside the process, as a provider keeps them:
a job submitted before a kill is still there for the resume, and the store can say every
custom_id it ever accepted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from engine import log
from engine.providers._sim_batch import accepted_custom_ids
from tests.cli import batchdeck, kill_repeatedly

MODEL = "simulate:gpt-4o-mini"


def setup(tmp_path: Path, count: int) -> Path:
    source = tmp_path / "items.jsonl"
    rows = (
        orjson.dumps({"id": f"t{i:04d}", "context": f"ticket {i}"}) + b"\n" for i in range(count)
    )
    source.write_bytes(b"".join(rows))
    return source


def detached(tmp_path: Path, count: int) -> Path:
    """The run dir of ``count`` items submitted in a job that will not end by itself."""
    source, run_dir = setup(tmp_path, count), tmp_path / "run"
    done = batchdeck(
        "run", str(source), "--batch", "--detach", "--sim-batch-s", "3600",
        "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return run_dir


def result_pairs(run_dir: Path) -> Counter[tuple[str, str]]:
    records = log.read_records(run_dir / "log.jsonl")
    return Counter(
        (r.model, r.id)
        for r in map(log.result_from_record, (x for x in records if x["k"] == "result"))
    )


def accepted_lines(run_dir: Path) -> Counter[str]:
    """How many jobs accepted each input line (custom ids are ``j<job>-l<line>``)."""
    ids = accepted_custom_ids(run_dir / "sim-batches")
    assert len(ids) == len(set(ids)), "a custom_id was accepted twice"
    return Counter(re.sub(r"^j\d+-", "", custom_id) for custom_id in ids)


def test_detach_then_batches_then_resume(tmp_path: Path) -> None:
    source = setup(tmp_path, 300)
    done = batchdeck(
        "run", str(source), "--batch", "--detach", "--batch-size", "100", "--sim-batch-s", "0.5",
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    started = re.search(r"run (\S+) in (\S+)", done.stderr)
    assert started is not None
    run_id, run_dir = started[1], Path(started[2])
    assert f"batchdeck resume {run_id}" in done.stderr
    assert sum(result_pairs(run_dir).values()) == 0
    listed = batchdeck("batches", run_id, home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith(run_id)]
    assert len(rows) == 3 and all("simulate" in row and "simbatch_" in row for row in rows)
    every = batchdeck("batches", home=tmp_path).stdout  # all runs: this one
    assert sorted(re.findall(r"simbatch_\w+", every)) == sorted(
        re.findall(r"simbatch_\w+", listed.stdout)
    )
    resumed = batchdeck("resume", run_id, "--poll-s", "0.1", home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "batch prices saved $" in resumed.stderr
    pairs = result_pairs(run_dir)
    assert len(pairs) == 300 and set(pairs.values()) == {1}
    assert set(accepted_lines(run_dir).values()) == {1}
    ended = batchdeck("batches", run_id, home=tmp_path).stdout
    assert ended.count(" ended ") == 3
    scripted = json.loads(batchdeck("batches", run_id, "--json", home=tmp_path).stdout)
    assert [(job["run"], job["provider"], job["state"]) for job in scripted] == [
        (run_id, "simulate", "ended")
    ] * 3
    assert sum(job["succeeded"] for job in scripted) == 300
    assert sorted(job["job_id"] for job in scripted) == sorted(re.findall(r"simbatch_\w+", ended))


def test_cancel_leaves_unfinished_items_pending_and_resume_finishes_them(tmp_path: Path) -> None:
    run_dir = detached(tmp_path, 50)
    cancelled = batchdeck("cancel", str(run_dir), home=tmp_path)
    assert cancelled.returncode == 0 and "cancel asked" in cancelled.stderr
    listed = batchdeck("batches", str(run_dir), home=tmp_path)
    assert " cancelled " in listed.stdout
    resumed = batchdeck(
        "resume", str(run_dir), "--sim-batch-s", "0", "--poll-s", "0.1", home=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "50 unfinished (pending)" in resumed.stderr
    pairs = result_pairs(run_dir)
    assert len(pairs) == 50 and set(pairs.values()) == {1}


def test_a_provider_without_a_batch_api_refuses_in_one_line(tmp_path: Path) -> None:
    source = setup(tmp_path, 3)
    done = batchdeck(
        "run", str(source), "--model", "ollama:llama3.2@batch", "--run-dir",
        str(tmp_path / "run"), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no batch API" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(300)  # a dozen process starts: a second or two each
def test_sigkill_through_submission_and_polling_never_submits_or_logs_twice(
    tmp_path: Path,
) -> None:
    """Killed at random instants (up to 12 times) while chunks are submitted and jobs
    polled, then resumed to the end: every item has exactly one result, no custom_id was
    accepted twice, and no item was in two jobs. Thirty jobs, three at a time: at least
    five lives submit before the run can end, however fast the machine."""
    count = 1200
    source, run_dir = setup(tmp_path, count), tmp_path / "run"
    args: tuple[str, ...] = (
        "run", str(source), "--batch", "--batch-size", "40", "--max-parallel-batches", "3",
        "--sim-batch-s", "1.0", "--poll-s", "0.1", "--run-dir", str(run_dir),
    )  # fmt: skip
    kill_repeatedly(args, run_dir, home=tmp_path, kills=12, at_least=5, within=(0.02, 1.2), seed=9)
    done = batchdeck("resume", str(run_dir), home=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    pairs = result_pairs(run_dir)
    assert len(pairs) == count and set(pairs.values()) == {1}
    lines = accepted_lines(run_dir)
    assert len(lines) == count and set(lines.values()) == {1}
    state = log.scan(run_dir / "log.jsonl")
    assert all(job.closed for job in state.batches.values())


def test_estimate_shows_online_and_batch_cost_side_by_side(tmp_path: Path) -> None:
    source = setup(tmp_path, 20)
    online = batchdeck("estimate", str(source), "--model", MODEL, home=tmp_path)
    batch = batchdeck("estimate", str(source), "--model", f"{MODEL}@batch", home=tmp_path)
    assert online.returncode == batch.returncode == 0, online.stderr + batch.stderr
    pattern = (
        r"\$([\d.]+) \(prompts only\) to \$([\d.]+) .* (online|batch); "
        r"~\$[\d.]+ likely, \$([\d.]+) to \$([\d.]+) (batch|online)"
    )
    first = re.search(pattern, online.stdout)
    second = re.search(pattern, batch.stdout)
    assert first and second
    assert (first[3], first[6], second[3], second[6]) == ("online", "batch", "batch", "online")
    assert float(first[2]) == float(second[5]) and float(first[5]) == float(second[2])
    assert float(first[5]) == pytest.approx(float(first[2]) / 2, abs=1e-4)


def test_a_job_its_provider_no_longer_knows_stops_the_run_until_the_user_forgets_it(
    tmp_path: Path,
) -> None:
    run_dir = detached(tmp_path, 40)
    (job_dir,) = (run_dir / "sim-batches").iterdir()
    job_id = job_dir.name
    for path in job_dir.iterdir():  # the provider deleted the job (or its retention passed)
        path.unlink()
    job_dir.rmdir()
    stuck = batchdeck("resume", str(run_dir), "--poll-s", "0.1", home=tmp_path)
    assert stuck.returncode != 0
    assert f"batch job {job_id} is not known to its provider" in stuck.stderr
    assert f"--forget-job {job_id}" in stuck.stderr and "Traceback" not in stuck.stderr
    assert sum(result_pairs(run_dir).values()) == 0
    wrong = batchdeck("resume", str(run_dir), "--forget-job", "batch_nope", home=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"batchdeck: error: --forget-job batch_nope: the run has no open batch job of that id "
        f"(open: {job_id})"
    )
    resumed = batchdeck(
        "resume", str(run_dir), "--forget-job", job_id, "--sim-batch-s", "0", "--poll-s", "0.1",
        home=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    pairs = result_pairs(run_dir)
    assert len(pairs) == 40 and set(pairs.values()) == {1}
    listed = batchdeck("batches", str(run_dir), home=tmp_path).stdout
    assert f"{job_id}" in listed and " forgotten " in listed and "expires in -" in listed


def test_forgetting_a_job_its_provider_still_has_is_refused(tmp_path: Path) -> None:
    run_dir = detached(tmp_path, 20)
    (job_dir,) = (run_dir / "sim-batches").iterdir()
    refused = batchdeck("resume", str(run_dir), "--forget-job", job_dir.name, home=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"batchdeck: error: --forget-job {job_dir.name}: simulate:gpt-4o-mini still has that "
        "job (running): resume without --forget-job fetches its results (batchdeck cancel RUN "
        "cancels it)"
    )
    assert accepted_lines(run_dir).total() == 20  # nothing was sent again
    assert not any(
        job.state == "forgotten" for job in log.scan(run_dir / "log.jsonl").batches.values()
    )


def test_forget_job_on_a_new_run_is_refused_in_one_line(tmp_path: Path) -> None:
    source = setup(tmp_path, 3)
    refused = batchdeck("run", str(source), "--forget-job", "batch_1", home=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "batchdeck: error: --forget-job goes with --resume: a new run has no batch jobs yet"
    )


def test_detach_under_a_cap_its_jobs_hold_returns_instead_of_waiting(tmp_path: Path) -> None:
    """Detached, once every reservation is held by jobs at the provider the next item can
    only wait for results the execution does not wait for: it ends at the cap at once
    (it waited for ever)."""
    source, run_dir = setup(tmp_path, 12), tmp_path / "run"
    detached = batchdeck(
        "run", str(source), "--batch", "--detach", "--max-cost", "0.0007",
        "--batch-size", "2", "--sim-batch-s", "0.5", "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert detached.returncode == 3, detached.stderr
    assert "what is left of it is held by the batch jobs submitted" in detached.stderr
    submitted = accepted_lines(run_dir).total()
    assert 0 < submitted < 12
    done = batchdeck(
        "resume", str(run_dir), "--sim-batch-s", "0", "--poll-s", "0.1", "--max-cost", "1",
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pairs = result_pairs(run_dir)
    assert len(pairs) == 12 and set(pairs.values()) == {1}
    assert set(accepted_lines(run_dir).values()) == {1}


def test_an_items_cap_on_resume_counts_its_requests_still_in_a_job(tmp_path: Path) -> None:
    """An item whose batch request holds half its cap in a job still running cannot have a
    call that needs more on resume, --retry-failed or not (the resume gave it the whole
    cap: found by the attack session)."""
    source, run_dir = setup(tmp_path, 2), tmp_path / "run"
    common = ("--max-item-cost", "0.00016", "--detach", "--quiet")
    first = batchdeck(
        "run", str(source), "--prompt", "x {context}", "--model", f"{MODEL}@batch",
        "--model", "simulate:gpt-4o", "--sim-batch-s", "3600", "--run-dir", str(run_dir),
        *common, home=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = batchdeck("resume", str(run_dir), "--retry-failed", *common, home=tmp_path)
    assert again.returncode == 0, again.stderr
    online = [r for r in log.iter_results(run_dir / "log.jsonl") if r.model == "simulate:gpt-4o"]
    assert len(online) == 2 and {r.status for r in online} == {"skipped"}
    assert all("the item's other calls took $" in (r.error.message if r.error else "")
               for r in online)  # fmt: skip
