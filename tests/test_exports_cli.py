"""Exports a user can trust, through the real CLI: rows in input order, the fields that say
how each answer went, the prompt sent, every attempt, Parquet, stdout, the run's own folder."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from engine import log
from tests.cli import SAMPLES, batchdeck

TICKETS = SAMPLES / "tickets.jsonl"
PROMPT = "Classify: {context}"
# Latencies spread around 30 ms over 8 workers: items finish out of input order.
SPREAD = ("--sim-latency-ms", "30", "--workers", "8", "--prompt", PROMPT)


def input_ids() -> list[str]:
    return [orjson.loads(line)["id"] for line in TICKETS.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run of the sample tickets whose items finished out of order, some after retries."""
    home = tmp_path_factory.mktemp("home")
    run_dir = home / "run"
    done = batchdeck(
        "run", str(TICKETS), *SPREAD, "--sim-failure-rate", "0.3", "--retry-wait", "0",
        "--retries", "6", "--run-dir", str(run_dir), home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = [r.id for r in log.iter_results(run_dir / "log.jsonl")]
    assert logged != input_ids()  # else this test would prove nothing about the order
    return home, run_dir


def jsonl(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines()]


def test_export_rows_come_in_input_order_with_how_each_answer_went(
    finished_run: tuple[Path, Path],
) -> None:
    home, run_dir = finished_run
    done = batchdeck("export", str(run_dir), home=home)
    assert done.returncode == 0, done.stderr
    rows = jsonl(done.stdout)
    assert [r["id"] for r in rows] == input_ids()
    first = rows[0]
    assert first["finish_reason"] == "stop" and first["status"] == "ok"
    assert first["cached_input_tokens"] == 0 and first["reasoning_tokens"] == 0
    assert first["prompt_edited"] is False
    started, ended = str(first["started_at"]), str(first["finished_at"])
    assert started.endswith("+00:00") and started <= ended


def test_export_prompt_and_every_attempt(finished_run: tuple[Path, Path]) -> None:
    home, run_dir = finished_run
    done = batchdeck("export", str(run_dir), "--export-prompt", "--attempts", home=home)
    assert done.returncode == 0, done.stderr
    rows = jsonl(done.stdout)
    source = [orjson.loads(line) for line in TICKETS.read_bytes().splitlines()]
    plain = [(r, s) for r, s in zip(rows, source, strict=True) if "prompt" not in s]
    assert all(r["prompt"] == f"Classify: {s['context']}" for r, s in plain)
    retried = [r for r in rows if r["attempts"] > 1]  # type: ignore[operator]
    assert retried, "the failure rate should have made some items retry"
    for row in rows:
        history = row["attempt_history"]
        assert isinstance(history, list) and len(history) == row["attempts"]
        assert [a["status"] for a in history] == ["failed"] * (len(history) - 1) + ["ok"]
        assert [a["attempt"] for a in history] == list(range(1, len(history) + 1))


def test_attempts_in_csv_is_refused_in_one_line(finished_run: tuple[Path, Path]) -> None:
    home, run_dir = finished_run
    done = batchdeck("export", str(run_dir), "--format", "csv", "--attempts", home=home)
    assert done.returncode == 2
    assert done.stderr == (
        "batchdeck: error: --attempts needs JSONL or Parquet: a CSV cell holds no list\n"
    )


def test_parquet_export_is_typed_and_in_input_order(
    finished_run: tuple[Path, Path], tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    home, run_dir = finished_run
    out = tmp_path / "results.parquet"
    done = batchdeck("export", str(run_dir), "--output", str(out), home=home)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == input_ids()
    types = {field.name: str(field.type) for field in table.schema}
    assert types["input_tokens"] == "int64" and types["cost_usd"] == "double"
    assert types["finished_at"] == "timestamp[ms, tz=UTC]" and types["prompt_edited"] == "bool"
    assert set(table.column("status").to_pylist()) == {"ok"}


def test_parquet_without_pyarrow_says_how_to_get_it(
    finished_run: tuple[Path, Path], tmp_path: Path
) -> None:
    home, run_dir = finished_run
    shadow = tmp_path / "shadow" / "pyarrow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    out = tmp_path / "results.parquet"
    done = batchdeck(
        "export", str(run_dir), "--output", str(out), home=home,
        extra_env={"PYTHONPATH": str(shadow.parent)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "batchdeck: error: --format parquet needs pyarrow: pip install 'batchdeck[parquet]'\n"
    )
    assert not out.exists()


def test_output_dash_writes_jsonl_to_stdout_in_input_order(tmp_path: Path) -> None:
    done = batchdeck("run", str(TICKETS), *SPREAD, "--output", "-", home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = jsonl(done.stdout)
    assert [r["id"] for r in rows] == input_ids()
    assert "finished" in done.stderr and "results:" not in done.stderr


def test_output_file_is_in_input_order_and_csv_has_the_new_columns(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    done = batchdeck("run", str(TICKETS), *SPREAD, "--output", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["id"] for r in rows] == input_ids()
    for column in ("finish_reason", "cached_input_tokens", "reasoning_tokens", "started_at"):
        assert column in rows[0]


def test_the_runs_exports_folder_takes_an_export_the_rest_of_the_run_dir_does_not(
    finished_run: tuple[Path, Path],
) -> None:
    home, run_dir = finished_run
    inside = run_dir / "exports" / "all.csv"
    done = batchdeck("export", str(run_dir), "--output", str(inside), home=home)
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader(io.StringIO(inside.read_text())))) == len(input_ids())
    assert (run_dir / "exports").stat().st_mode & 0o777 == 0o700
    beside = run_dir / "all.csv"
    refused = batchdeck("export", str(run_dir), "--output", str(beside), home=home)
    assert refused.returncode == 2 and "is inside run dir" in refused.stderr


def test_a_parquet_output_without_pyarrow_is_refused_before_the_run(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "pyarrow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    done = batchdeck(
        "run", str(TICKETS), "--sim-latency-ms", "0", "--output", str(tmp_path / "r.parquet"),
        home=tmp_path, extra_env={"PYTHONPATH": str(shadow.parent)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "batchdeck: error: --format parquet needs pyarrow: pip install 'batchdeck[parquet]'\n"
    )
    assert not (tmp_path / "runs").exists()  # refused before its first call: no run dir
