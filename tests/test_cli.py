"""The headless CLI as a user runs it: subprocesses, real files, exit codes, one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from tests.cli import SAMPLES, batchdeck, interrupt, reap, start

FAST = ("--sim-latency-ms", "0")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def test_sample_batch_runs_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), *FAST, "--output", str(out), home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stderr and "ok" in done.stderr and "cost $" in done.stderr
    rows = read_csv(out)
    source = [orjson.loads(line) for line in (SAMPLES / "tickets.jsonl").read_bytes().splitlines()]
    assert len(rows) == len(source)
    header = list(rows[0])
    assert header[0] == "id" and header.index("context") < header.index("status")
    assert all(r["status"] == "ok" and r["output"].startswith("[simulated") for r in rows)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.jsonl", "missing.jsonl"),
        (lambda d: d, "directory"),
        (lambda d: (d / "empty.jsonl", (d / "empty.jsonl").write_text(""))[0], "empty"),
        (lambda d: (d / "x.xlsx", (d / "x.xlsx").write_text("a"))[0], "x.xlsx"),
    ],
    ids=["missing", "directory", "empty", "unknown-format"],
)
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, make, expected: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = make(data)
    done = batchdeck("run", str(path), *FAST, home=tmp_path)
    assert done.returncode == 2
    no_traceback(done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batchdeck: error:") and expected in lines[0]


def test_usage_error_is_one_line(tmp_path: Path) -> None:
    done = batchdeck("run", str(SAMPLES / "tickets.jsonl"), "--workers", "0", home=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    no_traceback(done.stderr)


def test_failures_give_exit_1_and_caps_exit_3(tmp_path: Path) -> None:
    failing = batchdeck(
        "run", str(SAMPLES / "headlines.txt"), *FAST, "--sim-failure-rate", "1", "--retries", "0",
        home=tmp_path,
    )  # fmt: skip
    assert failing.returncode == 1, failing.stderr
    assert "failed" in failing.stderr
    capped = batchdeck(
        "run", str(SAMPLES / "headlines.txt"), *FAST, "--max-items", "3", home=tmp_path
    )
    assert capped.returncode == 3, capped.stderr
    assert "not sent" in capped.stderr


def test_cost_cap_on_a_model_without_price_refuses(tmp_path: Path) -> None:
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), "--model", "simulate:my-own-model",
        "--max-cost", "1", home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        "no price known for simulate:my-own-model" in done.stderr and "prices.json" in done.stderr
    )


def test_estimate_runs_and_export_and_resume(tmp_path: Path) -> None:
    est = batchdeck("estimate", str(SAMPLES / "reviews.csv"), "--max-tokens", "100", home=tmp_path)
    assert est.returncode == 0, est.stderr
    assert "items" in est.stdout and "cost" in est.stdout and "$" in est.stdout

    first = batchdeck(
        "run", str(SAMPLES / "reviews.csv"), *FAST, "--max-items", "10", home=tmp_path
    )
    assert first.returncode == 3
    run_id = first.stderr.split()[2]
    assert f"resume: batchdeck resume {run_id}" in first.stderr
    listed = batchdeck("runs", home=tmp_path)
    assert run_id in listed.stdout and "capped" in listed.stdout and "10/50" in listed.stdout
    resumed = batchdeck("resume", run_id, home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    run_dir = tmp_path / "runs" / run_id
    out = tmp_path / "all.jsonl"
    exported = batchdeck("export", str(run_dir), "--output", str(out), home=tmp_path)
    assert exported.returncode == 0 and "rows" in exported.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    source = read_csv(SAMPLES / "reviews.csv")
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in source)
    ok_only = batchdeck("export", str(run_dir), "--status", "failed", home=tmp_path)
    assert ok_only.returncode == 0 and ok_only.stdout == ""


def test_first_ctrl_c_stops_gracefully_and_the_run_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(
        "run", str(SAMPLES / "tickets.jsonl"), "--sim-latency-ms", "2000", "--workers", "2",
        "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "run" in first, first
        err = interrupt(proc)
    finally:
        reap(proc)
    assert proc.returncode == 130, err
    assert "stopping" in err and "resumable" in err
    assert "resume: batchdeck resume run" in err and "export: batchdeck export run" in err
    no_traceback(err)
    resumed = batchdeck("resume", str(run_dir), "--workers", "16", home=tmp_path)
    assert resumed.returncode in (0, 1), resumed.stderr


def test_stdin_json_array_and_a_pydantic_schema(tmp_path: Path) -> None:
    (tmp_path / "labels.py").write_text(
        "from typing import Literal\nfrom pydantic import BaseModel\n\n"
        "class Label(BaseModel):\n    topic: Literal['tech', 'politics', 'sport']\n"
        "    confidence: float\n"
    )
    lines = b"\n".join(orjson.dumps({"id": f"s{i}", "text": f"headline {i}"}) for i in range(5))
    out = tmp_path / "out.jsonl"
    done = batchdeck(
        "run", "-", *FAST, "--prompt", "Tag: {text}", "--schema", "labels:Label",
        "--output", str(out), home=tmp_path, cwd=tmp_path, stdin=lines + b"\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(5)]
    assert all(set(r["parsed"]) == {"topic", "confidence"} for r in rows)

    array = tmp_path / "items.json"
    array.write_bytes(orjson.dumps([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]))
    done = batchdeck("run", str(array), *FAST, home=tmp_path)
    assert done.returncode == 0 and "2 items" in done.stderr


def test_keys_lists_providers_and_masks_what_it_finds(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-test-abcdefghijklmnop1234\n")
    done = batchdeck("keys", home=tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    openai = next(line for line in lines if line.startswith("openai "))
    assert ".env" in openai and "1234" in openai and "abcdefghijklmnop" not in openai
    assert any(line.startswith("anthropic") and "missing" in line for line in lines)


def test_a_run_started_on_a_relative_path_resumes_from_another_directory(
    tmp_path: Path,
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "items.txt").write_bytes((SAMPLES / "headlines.txt").read_bytes())
    run_dir = tmp_path / "run"
    first = batchdeck("run", "items.txt", *FAST, "--max-items", "3", "--run-dir", str(run_dir),
                      home=tmp_path, cwd=here)  # fmt: skip
    assert first.returncode == 3 and "not sent       37" in first.stderr, first.stderr
    done = batchdeck("resume", str(run_dir), home=tmp_path, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stderr and "ok             40" in done.stderr
