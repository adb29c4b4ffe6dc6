"""The real CLI against the local fake provider server: every provider, structured output,
every fault the server can inject, fail-fast on a bad key, and no key anywhere on disk."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.cli import SAMPLES, batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-canary-7f3a9c2e5b1d4f6a8e0c"
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
SCHEMA = SAMPLES / "schemas" / "ticket_label.json"

RETRYABLE = {
    "429": "rate_limited",
    "500": "server_error",
    "503": "overloaded",
    "529": "overloaded",
    "reset": "connection",
    "truncated": "connection",
    "malformed": "server_error",
    "slow_body": "timeout",
    "hang": "timeout",
    "invalid_json_output": "invalid_output",
}
FINAL = {"refusal": "content_filter", "context_length": "context_length", "quota": "quota"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(
        api_key=KEY, latency_ms=5, hang_s=30, slow_body_interval_s=0.5, slow_body_chunks=20,
        fault_retry_after_ms=20,
    ) as fake:  # fmt: skip
        yield fake


def base_url(server: FakeServer, provider: str) -> str:
    return server.openai_base_url if provider == "openai" else server.url


def run_cli(server: FakeServer, provider: str, source: Path, home: Path, *extra: str, key=KEY):
    return batchdeck(
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}",
        "--base-url", base_url(server, provider), "--retry-wait", "0.01", "--timeout", "2",
        *extra, home=home, extra_env={KEY_ENV[provider]: key}, timeout=120,
    )  # fmt: skip


def fault_items(path: Path) -> Path:
    rows = [{"id": "plain", "context": "My printer is on fire, please advise."}]
    for kind in [*RETRYABLE, *FINAL]:
        rows.append({"id": f"always-{kind}", "context": f"Ticket [[fault:{kind}]] help"})
        rows.append({"id": f"once-{kind}", "context": f"Ticket [[fault:{kind}x1]] help"})
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def read_jsonl(path: Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(orjson.loads, path.read_bytes().splitlines())}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_sample_batch_with_structured_output(server: FakeServer, provider: str, tmp_path: Path):
    out = tmp_path / "out.csv"
    done = run_cli(
        server, provider, SAMPLES / "tickets.jsonl", tmp_path, "--schema", str(SCHEMA),
        "--output", str(out), "--prompt", "Label this ticket: {context}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60 and all(r["status"] == "ok" for r in rows)
    schema = orjson.loads(SCHEMA.read_bytes())
    for name in schema["properties"]:
        assert f"parsed.{name}" in rows[0]
    assert all(float(r["cost_usd"]) > 0 and int(r["input_tokens"]) > 0 for r in rows)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_every_fault_ends_ok_after_retries_or_failed_with_its_kind(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    done = run_cli(
        server, provider, fault_items(tmp_path / "faults.jsonl"), tmp_path, "--schema",
        str(SCHEMA), "--retries", "2", "--output", str(out), "--workers", "32",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = read_jsonl(out)
    assert len(rows) == 1 + 2 * (len(RETRYABLE) + len(FINAL))  # nothing lost
    assert rows["plain"]["status"] == "ok"
    for kind, error_kind in RETRYABLE.items():
        assert rows[f"once-{kind}"]["status"] == "ok", rows[f"once-{kind}"]
        assert rows[f"once-{kind}"]["attempts"] == 2
        always = rows[f"always-{kind}"]
        assert always["status"] == "failed" and always["attempts"] == 3, always
        assert always["error"].startswith(f"{error_kind}: "), always
    for kind, error_kind in FINAL.items():
        for prefix in ("once", "always"):
            row = rows[f"{prefix}-{kind}"]
            assert row["status"] == "failed" and row["attempts"] == 1, row
            assert row["error"].startswith(f"{error_kind}: "), row


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_wrong_key_stops_the_run_with_one_line(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    server.reset()
    done = run_cli(
        server, provider, SAMPLES / "tickets.jsonl", tmp_path, "--workers", "4", key="sk-wrong-key"
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors and ("401" in errors[0] or "auth" in errors[0].lower() or "key" in errors[0])
    assert server.stats()["requests"] <= 8


def test_no_trace_of_the_key_in_anything_a_run_writes(server: FakeServer, tmp_path: Path) -> None:
    server.configure(faults={"500": 0.2, "429": 0.1, "malformed": 0.05})
    try:
        out = tmp_path / "out.jsonl"
        done = run_cli(
            server, "openai", SAMPLES / "tickets.jsonl", tmp_path, "--output", str(out),
            "--retries", "1",
        )  # fmt: skip
        exported = batchdeck("export", *_last_run(tmp_path), home=tmp_path)
    finally:
        server.reset(config=True)
    assert done.returncode in (0, 1), done.stderr
    texts = [done.stdout, done.stderr, exported.stdout, exported.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert texts and all(KEY not in text and KEY[-12:] not in text for text in texts)


def _last_run(home: Path) -> list[str]:
    runs = sorted((home / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return [str(runs[-1])]
