"""The money cap from the command line, against a server that lies about usage.

The real ``batchdeck`` runs in a subprocess against ``tests.fakeserver.hostile``
(an OpenAI-compatible server on loopback that bills what it really produced and
keeps the books). What the server billed is the truth the cap is checked
against, whatever it reported, through SIGKILLs and resumes.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import orjson
import pytest

from engine import log
from tests.cli import batchdeck, kill_after
from tests.fakeserver.hostile import HostileServer, hostile_server

MODEL = "openai-compatible:hostile"
PRICE = {"input": 0.5, "output": 8.0}
"""USD per million tokens, as ``prices.json`` tells batchdeck."""


def billed_usd(server: HostileServer) -> float:
    books = server.billed()
    return (books["input_tokens"] * PRICE["input"] + books["output_tokens"] * PRICE["output"]) / 1e6


def setup(tmp_path: Path, count: int) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "prices.json").write_bytes(orjson.dumps({"models": {MODEL: PRICE}}))
    (tmp_path / "schema.json").write_bytes(orjson.dumps({"type": "object"}))
    source = tmp_path / "items.jsonl"
    rows = (
        orjson.dumps({"id": f"t{i:03d}", "context": f"ticket {i}"}) + b"\n" for i in range(count)
    )
    source.write_bytes(b"".join(rows))
    return source


def run_args(source: Path, server: HostileServer, run_dir: Path, *extra: str) -> tuple[str, ...]:
    """Every call paid: an answer stored before a kill would make its resume free."""
    return (
        "run", str(source), "--model", MODEL, "--base-url", server.base_url,
        "--run-dir", str(run_dir), "--max-tokens", "100", "--retry-wait", "0", "--no-cache",
        *extra,
    )  # fmt: skip


def result_ids(run_dir: Path) -> list[str]:
    records = log.read_records(run_dir / "log.jsonl")
    return [log.result_from_record(r).id for r in records if r.get("k") == "result"]


def test_a_passed_field_that_lifts_the_output_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    source = setup(tmp_path, 3)
    done = batchdeck(
        "run", str(source), "--max-cost", "0.01", "--param", "max_completion_tokens=100000",
        "--run-dir", str(tmp_path / "run"), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "--param max_completion_tokens" in done.stderr and "--max-tokens" in done.stderr


@pytest.mark.parametrize("lie", ["missing", "negative", "huge", "nan", "string", "float"])
def test_lying_usage_is_charged_in_full_and_the_cap_holds(tmp_path: Path, lie: str) -> None:
    source = setup(tmp_path, 40)
    cap = 0.002
    with hostile_server(usage=lie) as server:
        run_dir = tmp_path / "run"
        args = run_args(source, server, run_dir, "--max-cost", str(cap), "--workers", "4")
        done = batchdeck(*args, home=tmp_path)
        billed = billed_usd(server)
    assert done.returncode in (0, 1, 3), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert billed <= cap
    state = log.scan(run_dir / "log.jsonl")  # readable: nothing lost
    assert state.result_records == len(result_ids(run_dir)) > 0
    assert billed <= state.cost_usd <= cap
    rows = [
        orjson.loads(line)
        for line in batchdeck("export", str(run_dir), home=tmp_path).stdout.splitlines()
    ]
    assert rows and all(row["usage_unknown"] for row in rows if row["status"] == "ok")


def test_over_billing_stops_the_run_and_the_summary_says_by_how_much(tmp_path: Path) -> None:
    source = setup(tmp_path, 200)
    cap, workers, overbill = 0.01, 4, 3.0
    with hostile_server(usage="overbill", overbill=overbill) as server:
        args = run_args(source, server, tmp_path / "run", "--max-cost", str(cap),
                        "--workers", str(workers))  # fmt: skip
        done = batchdeck(*args, home=tmp_path)
        billed = billed_usd(server)
    assert done.returncode == 3, done.stderr
    assert "passed by $" in done.stderr and "more tokens than" in done.stderr
    # At most one round of calls in flight is billed past the cap.
    worst_call = (40 * PRICE["input"] + overbill * 100 * PRICE["output"]) / 1e6
    assert billed <= cap + workers * worst_call


def test_an_unpriced_model_shows_its_cost_as_unknown(tmp_path: Path) -> None:
    source = setup(tmp_path, 3)
    (tmp_path / "config" / "prices.json").unlink()
    with hostile_server() as server:
        done = batchdeck(*run_args(source, server, tmp_path / "run"), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"cost unknown (no price for {MODEL})" in done.stderr
    assert "$0.0000" not in done.stderr
    exported = batchdeck("export", str(tmp_path / "run"), home=tmp_path)
    assert [orjson.loads(line)["cost_usd"] for line in exported.stdout.splitlines()] == [None] * 3


KILLS = 15
ITEMS = 100


@pytest.mark.timeout(300)  # dozens of real processes: minutes on a loaded machine
def test_sigkill_during_paid_retries_and_calls_in_flight_never_passes_the_cap(
    tmp_path: Path,
) -> None:
    """Every answer is paid; each item's first two are invalid, so most of what is billed is
    attempts that are then retried. Killed at random, 15 times, the run never lets what the
    server billed pass the cap; a start that ends at the cap raises it by a step, so the kills
    keep coming near a cap; resumed at last with room, every id has one result."""
    source = setup(tmp_path, ITEMS)
    cap, step = 0.02, 0.01  # a twelfth of what the whole run costs, then a step at a time
    rng = random.Random(11)
    run_dir = tmp_path / "killed"
    with hostile_server(invalid_first=2, latency_ms=150, output_tokens=100) as server:
        args = run_args(source, server, run_dir, "--workers", "6",
                        "--schema", str(tmp_path / "schema.json"), "--retries", "3")  # fmt: skip
        kills = 0
        while kills < KILLS:
            status = kill_after(*args, "--max-cost", f"{cap:g}", home=tmp_path,
                                seconds=rng.uniform(0.05, 0.35))  # fmt: skip
            assert status in (-signal.SIGKILL, 3), "only a kill or the cap ends it"
            assert billed_usd(server) <= cap
            kills += status == -signal.SIGKILL
            if status == 3:  # at the cap: raise it, so the next kills come near a cap again
                cap += step
            args = ("resume", str(run_dir))
        done = batchdeck("resume", str(run_dir), "--max-cost", "1", home=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = result_ids(run_dir)
    assert sorted(ids) == [f"t{i:03d}" for i in range(ITEMS)]  # exactly one result each


def test_a_cap_added_after_a_kill_says_what_the_log_counts_for_calls_then_in_flight(
    tmp_path: Path,
) -> None:
    """A run without a cap, killed with calls in flight: its log's spending bound runs far
    ahead of what was billed. A resume under a cap between the two stops at once, saying the
    bound is for calls in flight at the kill, and never that a provider billed past it."""
    source = setup(tmp_path, ITEMS)
    run_dir = tmp_path / "killed"
    with hostile_server(latency_ms=1000) as server:
        args = run_args(source, server, run_dir, "--workers", "4")
        assert kill_after(*args, home=tmp_path, seconds=2.5) == -signal.SIGKILL
        state = log.scan(run_dir / "log.jsonl")
        assert state.unsettled_usd > 0
        cap = state.cost_usd - state.unsettled_usd / 2
        done = batchdeck("resume", str(run_dir), "--max-cost", f"{cap:.9f}", home=tmp_path)
        assert billed_usd(server) <= state.cost_usd  # the bound held what was in flight
    assert log.scan(run_dir / "log.jsonl").result_records == state.result_records  # none sent
    assert done.returncode == 3, done.stderr
    assert "in flight when the run was killed" in done.stderr
    assert "passed by" not in done.stderr and "billed more" not in done.stderr
