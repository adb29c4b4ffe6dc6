"""Batch runs through the real CLI against the fake server's batch endpoints, per provider.

The fake server keeps OpenAI's, Anthropic's and Gemini's batch jobs statefully (queued,
running, ended, expired, cancelled) and counts every custom_id any job accepted; the
real ``batchdeck`` talks to it over HTTP on 127.0.0.1 with a test key.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine import log
from engine._prices import PriceTable
from engine._results import ItemResult
from tests.cli import batchdeck, kill_repeatedly
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-canary-batch-5e1d"
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
PROVIDERS = list(MODELS)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, latency_ms=1, batch_queue_s=0.1, batch_s=0.5) as fake:
        yield fake


def base_url(server: FakeServer, provider: str) -> str:
    return server.openai_base_url if provider == "openai" else server.url


def items(path: Path, count: int) -> Path:
    rows = (
        orjson.dumps({"id": f"t{i:05d}", "context": f"ticket number {i}"}) for i in range(count)
    )
    path.write_bytes(b"".join(row + b"\n" for row in rows))
    return path


def run(
    server: FakeServer, provider: str, source: Path, run_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return batchdeck(
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}", "--batch",
        "--base-url", base_url(server, provider), "--run-dir", str(run_dir),
        "--poll-s", "0.2", "--max-tokens", "64", *extra,
        home=run_dir.parent, extra_env={KEY_ENV[provider]: KEY}, timeout=500,
    )  # fmt: skip


def resume(provider: str, run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return batchdeck(
        "resume", str(run_dir), *extra, home=run_dir.parent,
        extra_env={KEY_ENV[provider]: KEY}, timeout=500,
    )  # fmt: skip


def results(run_dir: Path) -> list[ItemResult]:
    records = log.read_records(run_dir / "log.jsonl")
    return [log.result_from_record(r) for r in records if r["k"] == "result"]


def one_result_each(run_dir: Path, count: int) -> list[ItemResult]:
    logged = results(run_dir)
    pairs = Counter((r.model, r.id) for r in logged)
    assert len(pairs) == count and set(pairs.values()) == {1}
    return logged


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ten_thousand_items_at_the_batch_price(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    source = items(tmp_path / "items.jsonl", 10_000)
    done = run(server, provider, source, tmp_path / "run", "--batch-size", "4000")
    assert done.returncode == 0, done.stderr
    logged = one_result_each(tmp_path / "run", 10_000)
    price = PriceTable.load().lookup(f"{provider}:{MODELS[provider]}")
    assert price is not None
    batch = price.batch()
    assert all(r.status == "ok" and r.cost_usd == batch.cost(r.usage) for r in logged)
    assert all(r.usage.input_tokens > 0 for r in logged)
    accepted = server.batch_accepted()
    assert accepted["requests"] == accepted["distinct"] == 10_000 and not accepted["repeated"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_job_that_expires_half_done_then_resume(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    source, run_dir = items(tmp_path / "items.jsonl", 200), tmp_path / "run"
    server.configure(batch_expire_fraction=0.5)
    first = run(server, provider, source, run_dir)
    assert first.returncode == 130, first.stderr
    assert "unfinished (pending)" in first.stderr
    done_first = len(results(run_dir))
    assert 0 < done_first < 200
    server.configure(batch_expire_fraction=None)
    again = resume(provider, run_dir)
    assert again.returncode == 0, again.stderr
    one_result_each(run_dir, 200)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_detach_cancel_and_resume(server: FakeServer, provider: str, tmp_path: Path) -> None:
    source, run_dir = items(tmp_path / "items.jsonl", 100), tmp_path / "run"
    server.configure(batch_s=3600)
    detached = run(server, provider, source, run_dir, "--detach")
    assert detached.returncode == 0, detached.stderr
    assert not results(run_dir)
    cancelled = resume(provider, run_dir, "--detach")  # re-attaches: one look, still running
    assert cancelled.returncode == 0, cancelled.stderr
    asked = batchdeck(
        "cancel", str(run_dir), home=tmp_path, extra_env={KEY_ENV[provider]: KEY}, timeout=120
    )
    assert asked.returncode == 0 and "cancel asked" in asked.stderr, asked.stderr
    server.configure(batch_s=0.5)
    finished = resume(provider, run_dir, "--poll-s", "0.2")
    assert finished.returncode == 0, finished.stderr
    one_result_each(run_dir, 100)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stragglers_finish_online_on_one_meter(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    source, run_dir = items(tmp_path / "items.jsonl", 60), tmp_path / "run"
    server.configure(batch_s=3600)
    done = run(server, provider, source, run_dir, "--finish-online-after", "0.5")
    assert done.returncode == 0, done.stderr
    logged = one_result_each(run_dir, 60)
    price = PriceTable.load().lookup(f"{provider}:{MODELS[provider]}")
    assert price is not None
    assert all(r.status == "ok" for r in logged)
    assert {r.cost_usd == price.cost(r.usage) for r in logged} == {True}  # online price
    state = log.scan(run_dir / "log.jsonl")
    assert state.cost_usd == pytest.approx(sum(r.cost_usd for r in logged))


def test_sigkill_loop_never_submits_a_request_twice(server: FakeServer, tmp_path: Path) -> None:
    """Killed at random instants (up to 12 times, at least 5) while chunks are submitted
    and jobs polled at the fake provider, then resumed to the end: every item has exactly
    one result and the provider accepted every custom_id exactly once. On Anthropic, whose
    jobs keep no client metadata, so a job is found again by its creation time and request
    count (OpenAI's and Gemini's carry the token: the same code path, an easier find)."""
    provider, count = "anthropic", 1200
    source, run_dir = items(tmp_path / "items.jsonl", count), tmp_path / "run"
    server.configure(batch_s=1.0)  # thirty jobs, three at a time: ten rounds at least
    env = {KEY_ENV[provider]: KEY}
    args: tuple[str, ...] = (
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}", "--batch",
        "--base-url", base_url(server, provider), "--run-dir", str(run_dir),
        "--poll-s", "0.1", "--max-tokens", "64", "--batch-size", "40",
        "--max-parallel-batches", "3",
    )  # fmt: skip
    kill_repeatedly(
        args,
        run_dir,
        home=tmp_path,
        kills=12,
        at_least=5,
        within=(0.02, 1.2),
        seed=11,
        extra_env=env,
    )
    done = resume(provider, run_dir)
    assert done.returncode == 0, done.stderr
    one_result_each(run_dir, count)
    accepted = server.batch_accepted()
    assert accepted["distinct"] == count and not accepted["repeated"], accepted["repeated"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_answers_are_kept_in_the_response_cache(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    """A request answered in a batch job is not paid for again: the same items run online
    afterwards are answered by the response cache, with the batch job's text, and the
    provider sees no call."""
    source = items(tmp_path / "items.jsonl", 30)
    batch = run(server, provider, source, tmp_path / "batch")
    assert batch.returncode == 0, batch.stderr
    answers = {r.id: r.output for r in one_result_each(tmp_path / "batch", 30)}
    server.reset()
    online = batchdeck(
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}",
        "--base-url", base_url(server, provider), "--run-dir", str(tmp_path / "online"),
        "--max-tokens", "64", home=tmp_path, extra_env={KEY_ENV[provider]: KEY},
    )  # fmt: skip
    assert online.returncode == 0, online.stderr
    again = one_result_each(tmp_path / "online", 30)
    assert all(r.cached and r.cost_usd == 0 and r.output == answers[r.id] for r in again)
    assert server.stats()["accepted"] == 0


def test_a_pipeline_with_a_batch_step_then_the_cache_answers_it(
    server: FakeServer, tmp_path: Path
) -> None:
    """Over HTTP: an online step, then a batch step reading its answers, in jobs at the
    fake provider (at the batch price, each request accepted once); the same items again
    are answered by the response cache at every step, the batch one included: no job, no
    call, nothing spent."""
    model = "openai:gpt-4o-mini"
    source = items(tmp_path / "items.jsonl", 60)
    steps = tmp_path / "run.toml"
    steps.write_text(
        f'[[step]]\nname = "extract"\nmodel = "{model}"\nprompt = "{{context}}"\n\n'
        f'[[step]]\nname = "classify"\nmodel = "{model}@batch"\n'
        'prompt = "label: {extract.output}"\n'
    )
    lanes = {f"extract/{model}": False, f"classify/{model}@batch": True}

    def pipeline(run_dir: Path) -> list[ItemResult]:
        done = batchdeck(
            "run", str(source), "--pipeline", str(steps), "--base-url", server.openai_base_url,
            "--run-dir", str(run_dir), "--poll-s", "0.2", "--max-tokens", "64",
            "--batch-size", "25", home=tmp_path, extra_env={"OPENAI_API_KEY": KEY}, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        logged = results(run_dir)
        pairs = Counter((r.model, r.id) for r in logged)
        assert set(m for m, _ in pairs) == set(lanes) and len(pairs) == 120
        assert set(pairs.values()) == {1} and {r.status for r in logged} == {"ok"}
        return logged

    logged = pipeline(tmp_path / "run")
    price = PriceTable.load().lookup(model)
    assert price is not None
    for r in logged:
        assert r.cost_usd == (price.batch() if lanes[r.model] else price).cost(r.usage)
    extracted = {r.id: r.output for r in logged if not lanes[r.model]}
    classified = [r for r in logged if lanes[r.model]]
    assert all(r.usage.input_tokens > 0 and not r.cached for r in classified)
    accepted = server.batch_accepted()
    assert accepted["distinct"] == 60 and not accepted["repeated"] and accepted["jobs"] >= 3
    assert len(extracted) == 60
    server.reset()
    again = pipeline(tmp_path / "again")
    assert all(r.cached and r.cost_usd == 0 for r in again)
    assert server.stats()["accepted"] == 0
    assert server.batch_accepted()["requests"] == 0  # no job since
    assert not log.scan(tmp_path / "again" / "log.jsonl").batches


def test_a_batch_answer_cut_off_at_the_limit_is_truncated(
    server: FakeServer, tmp_path: Path
) -> None:
    """Cut off at --max-tokens in a batch job as online: ``truncated``, paid, exit 1, and
    not kept in the response cache (the same request would be cut off again)."""
    source = items(tmp_path / "items.jsonl", 10)
    done = run(server, "anthropic", source, tmp_path / "run", "--max-tokens", "3")
    assert done.returncode == 1, done.stderr
    logged = one_result_each(tmp_path / "run", 10)
    assert {r.status for r in logged} == {"truncated"}
    assert all(r.error is not None and "cut off at 3 output tokens" in r.error.message
               for r in logged)  # fmt: skip
    assert all(r.cost_usd > 0 and r.output for r in logged)
    server.reset()
    online = batchdeck(
        "run", str(source), "--model", "anthropic:claude-haiku-4-5", "--base-url", server.url,
        "--run-dir", str(tmp_path / "online"), "--max-tokens", "3", home=tmp_path,
        extra_env={"ANTHROPIC_API_KEY": KEY},
    )  # fmt: skip
    assert online.returncode == 1, online.stderr
    assert server.stats()["accepted"] == 10


def test_a_job_whose_id_was_lost_is_found_among_the_runs_own_jobs(
    server: FakeServer, tmp_path: Path
) -> None:
    """Anthropic keeps no client token: a job whose id the log lost (killed before it was
    written) is found by its size and time, and the run's other jobs of the same size,
    whose ids the log has, are not mistaken for it."""
    source, run_dir = items(tmp_path / "items.jsonl", 30), tmp_path / "run"
    server.configure(batch_s=3600)
    detached = run(server, "anthropic", source, run_dir, "--batch-size", "10", "--detach")
    assert detached.returncode == 0, detached.stderr
    lines = (run_dir / "log.jsonl").read_bytes().splitlines(keepends=True)
    last = max(line for line in lines if b'"items":' in line and b'"k":"batch"' in line)
    token = orjson.loads(last[9:])["token"].encode()
    kept = [
        line for line in lines if token not in line or b'"items":' in line
    ]  # the last job's intent stays, every later word of it is gone
    assert len(kept) < len(lines)
    (run_dir / "log.jsonl").write_bytes(b"".join(kept))
    server.advance_batch_clock(3600)  # every job ends
    finished = resume("anthropic", run_dir, "--poll-s", "0.1")
    assert finished.returncode == 0, finished.stderr
    one_result_each(run_dir, 30)
    accepted = server.batch_accepted()
    assert accepted["distinct"] == 30 and not accepted["repeated"]


def test_cancel_that_the_provider_refuses_says_so_and_exits_1(
    server: FakeServer, tmp_path: Path
) -> None:
    source, run_dir = items(tmp_path / "items.jsonl", 10), tmp_path / "run"
    server.configure(batch_s=3600)
    assert run(server, "anthropic", source, run_dir, "--detach").returncode == 0
    wrong = "sk-ant-wrong-key-0123456789abcdef"
    refused = batchdeck(
        "cancel", str(run_dir), home=tmp_path, extra_env={KEY_ENV["anthropic"]: wrong}, timeout=120
    )
    assert refused.returncode == 1, refused.stderr
    assert "not cancelled: HTTP 401" in refused.stderr and "Traceback" not in refused.stderr
    assert wrong not in refused.stderr
