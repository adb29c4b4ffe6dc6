"""The terminal closing (SIGHUP) stops a run as Ctrl+C does: calls in flight end up logged."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine import log
from tests.cli import start
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-hangup-3c9e1a7f5b2d8e4a6c0f"
LATENCY_MS = 1500
WORKERS = 3


@pytest.fixture(scope="module")
def slow_server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, latency_ms=LATENCY_MS) as server:
        yield server


def wait_for_calls_in_flight(server: FakeServer, count: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while server.stats()["in_flight"] < count:
        assert time.monotonic() < deadline, "the calls never reached the server"


@pytest.mark.parametrize("reader_left", [False, True], ids=["stderr-open", "stderr-closed"])
def test_sighup_logs_the_calls_in_flight_and_leaves_the_run_resumable(
    slow_server: FakeServer, tmp_path: Path, reader_left: bool
) -> None:
    """With the terminal gone stderr cannot be written either: the run must not care."""
    slow_server.reset()
    items = tmp_path / "items.jsonl"
    items.write_bytes(
        # distinct prompts: the response cache would answer a repeated one without a call
        b"".join(orjson.dumps({"id": str(i), "context": f"hi {i}"}) + b"\n" for i in range(20))
    )
    run_dir = tmp_path / "run"
    proc = start(
        "run", str(items), "--model", "openai:gpt-4o-mini", "--base-url",
        slow_server.openai_base_url, "--workers", str(WORKERS), "--run-dir", str(run_dir),
        home=tmp_path, extra_env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    try:
        wait_for_calls_in_flight(slow_server, WORKERS)
        if reader_left:
            assert proc.stderr is not None
            proc.stderr.close()
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == 130
    state = log.scan(run_dir / "log.jsonl")
    assert state.run_state == "stopped"
    assert state.ok == slow_server.stats()["accepted"] >= WORKERS  # every paid call is logged
