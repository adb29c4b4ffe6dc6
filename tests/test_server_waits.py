"""A server asking for an absurd wait (``Retry-After: 1000000000`` or ``inf``): the wait is
capped, never outlasts the time limit, and the first Ctrl+C still stops the run at once."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import log
from engine._config import RetrySettings
from engine._retry import backoff_delay
from tests.cli import batchdeck, interrupt, reap, start
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-waits-2d6f0a9c4e8b1d3f5a7c"
MODEL = ("--model", "openai:gpt-4o-mini")


@given(
    retry_after=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    attempt=st.integers(1, 101),
    max_wait=st.floats(0.01, 1e4),
)
def test_no_server_can_ask_for_more_than_the_cap(
    retry_after: float | None, attempt: int, max_wait: float
) -> None:
    settings = RetrySettings(max_wait_s=max_wait)
    delay = backoff_delay(attempt, settings=settings, retry_after=retry_after)
    assert 0 <= delay <= max(max_wait, settings.cap_s) and math.isfinite(delay)
    if retry_after is not None and retry_after >= max_wait:
        assert delay == max_wait


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, latency_ms=5) as fake:
        yield fake


def write_items(path: Path, hostile: int, plain: int) -> Path:
    contexts = ["wait [[hostile:retry_after]]"] * hostile + ["plain"] * plain
    rows = [orjson.dumps({"id": f"i{n}", "context": c}) for n, c in enumerate(contexts)]
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


@pytest.mark.parametrize("announced", ["1000000000", "inf", "1e400"])
def test_the_time_limit_ends_a_run_whose_server_asks_to_wait_forever(
    server: FakeServer, tmp_path: Path, announced: str
) -> None:
    server.configure(hostile_retry_after=announced)
    try:
        items = write_items(tmp_path / "items.jsonl", hostile=2, plain=3)
        run_dir = tmp_path / "run"
        began = time.monotonic()
        done = batchdeck(
            "run", str(items), *MODEL, "--base-url", server.openai_base_url, "--time-limit",
            "3", "--run-dir", str(run_dir), home=tmp_path, extra_env={"OPENAI_API_KEY": KEY},
            timeout=60,
        )  # fmt: skip
        elapsed = time.monotonic() - began
    finally:
        server.reset(config=True)
    assert done.returncode == 3, done.stderr
    assert "time limit of 3s reached" in done.stderr
    assert elapsed < 3 + 15  # the limit, plus starting Python and the calls in flight
    state = log.scan(run_dir / "log.jsonl")
    assert state.run_state == "capped" and state.failed == 0
    logged = {result.id for result in log.iter_results(run_dir / "log.jsonl")}
    assert logged <= {"i2", "i3", "i4"}  # the waiting items stay unsent: resumable


def test_max_retry_wait_caps_what_the_server_asked_for(server: FakeServer, tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", hostile=1, plain=0)
    out = tmp_path / "out.jsonl"
    began = time.monotonic()
    done = batchdeck(
        "run", str(items), *MODEL, "--base-url", server.openai_base_url, "--retries", "2",
        "--max-retry-wait", "0.2", "--output", str(out), home=tmp_path,
        extra_env={"OPENAI_API_KEY": KEY}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - began < 20
    row = orjson.loads(out.read_bytes())
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["error"].startswith("rate_limited: ")


def test_the_first_ctrl_c_interrupts_a_wait_between_attempts(
    server: FakeServer, tmp_path: Path
) -> None:
    server.reset()
    items = write_items(tmp_path / "items.jsonl", hostile=1, plain=0)
    run_dir = tmp_path / "run"
    proc = start(
        "run", str(items), *MODEL, "--base-url", server.openai_base_url, "--run-dir",
        str(run_dir), home=tmp_path, extra_env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while server.stats()["by_status"].get("429", 0) < 1:  # the worker is now waiting
            assert time.monotonic() < deadline, "the call never reached the server"
        err = interrupt(proc, timeout=15)
    finally:
        reap(proc)
    assert proc.returncode == 130, err
    state = log.scan(run_dir / "log.jsonl")
    assert state.result_records == 0 and state.run_state == "stopped"  # unsent: resumable
