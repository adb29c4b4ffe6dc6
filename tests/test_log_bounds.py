"""A checksummed log record with absurd values: a corrupt-log error naming its line, or (a
far line number) kept in bounded memory; never a MemoryError, an overflow or a traceback."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import log
from engine._config import RunConfig
from engine._errors import LogCorrupt
from engine.log import LogWriter, encode, header_record, iter_results, scan
from tests.cli import batchdeck

MODEL = "simulate:gpt-4o-mini"


def head(line: object = 1, cost: object = 0.001, tokens: tuple[object, ...] = (10, 5, 0)) -> Any:
    return {"k": "result", "head": [MODEL, f"id-{line}", line, "ok", cost, *tokens]}


def write_log(path: Path, records: list[dict[str, Any]], **header: Any) -> Path:
    first = {**header_record("run-1", config="c" * 64, input=None, t=1.0), **header}
    with LogWriter.create(path, first, durability="flush") as writer:
        writer.write_group([encode(r) for r in records])
    return path


def all_results(path: Path) -> object:
    return list(iter_results(path))


def test_a_far_line_number_costs_one_entry_not_a_table_that_reaches_it(tmp_path: Path) -> None:
    far = 1 << 40
    path = write_log(tmp_path / "log.jsonl", [head(1), head(far), head(2)])
    tracemalloc.start()
    try:
        state = scan(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert state.ok == 3
    assert state.status(MODEL, f"id-{far}", far) == "ok"
    assert state.status(MODEL, "id-2", 2) == "ok"
    assert state.status(MODEL, "id-2", far) is None
    # Latest wins across the two stores: a line kept apart is folded into the table once
    # the table grows past it, and a later record of it overwrites it there.
    near = (1 << 20) + 5
    failed = {**head(near), "head": [MODEL, f"id-{near}", near, "failed", 0.0, 1, 0, 0]}
    records = [head(far), failed, *(head(n) for n in range(1, near + 2, 4096)), head(near)]
    state = scan(write_log(tmp_path / "folded.jsonl", records))
    assert (state.ok, state.failed) == (len(records) - 1, 0)
    assert state.status(MODEL, f"id-{near}", near) == "ok"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (head("7"), "wrong type"),
        (head(cost=-0.5), "negative cost"),
        (head(cost=None), "wrong type"),
        (head(cost="0.1"), "wrong type"),
        (head(tokens=(-10, 5, 0)), "negative cost or token count"),
        ({"k": "finish", "t": 1.0, "state": "finished", "spent_usd": "lots"}, "spend"),
        ({"k": "finish", "t": 1.0, "state": "finished", "spent_usd": 1e300}, "spend"),
        ({"k": "finish", "t": 1.0, "state": ["x"] * 3}, "unknown state"),
    ],
)
def test_an_absurd_value_is_corruption_at_its_line(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    path = write_log(tmp_path / "log.jsonl", [head(1), record])
    with pytest.raises(LogCorrupt, match=rf"log\.jsonl, line 3: .*{message}"):
        scan(path)


@pytest.mark.parametrize(
    "records",
    [
        [head(cost=1e308), head(2, cost=1e308)],
        [head(tokens=(1 << 63, 0, 0)), head(2, tokens=(1 << 63, 0, 0))],
        [head(tokens=(1.5, 0, 0))],
    ],
    ids=["cost-overflows", "tokens-overflow", "fractional-tokens"],
)
def test_totals_past_any_real_run_are_corruption(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    path = write_log(tmp_path / "log.jsonl", records)
    with pytest.raises(LogCorrupt, match="add up to an impossible"):
        scan(path)


@pytest.mark.parametrize(
    "field", [{"t": 1e300}, {"t": "yesterday"}, {"run_id": ["x"]}], ids=["t", "t-str", "run_id"]
)
def test_a_header_with_an_absurd_value_is_corruption(tmp_path: Path, field: dict[str, Any]) -> None:
    path = write_log(tmp_path / "log.jsonl", [head(1)], **field)
    with pytest.raises(LogCorrupt, match="header"):
        scan(path)


@pytest.mark.parametrize(
    "record",
    [
        head(cost=1e300),
        head(tokens=(1 << 60, 0, 0)),
        {**head(1), "attempts": 1 << 40},
        {**head(1), "latency_ms": -1.0},
    ],
    ids=["cost", "tokens", "attempts", "latency"],
)
def test_export_refuses_a_result_out_of_bounds(tmp_path: Path, record: dict[str, Any]) -> None:
    path = write_log(tmp_path / "log.jsonl", [record])
    reader: Callable[[Path], object] = all_results
    with pytest.raises(LogCorrupt, match=r"line 2: a malformed result record"):
        reader(path)


def test_resume_and_runs_on_a_log_with_an_absurd_record_say_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "hostile"
    run_dir.mkdir(parents=True)
    items = tmp_path / "items.jsonl"
    items.write_bytes(b'{"id": "a", "context": "x"}\n')
    (run_dir / "config.json").write_bytes(RunConfig(input=str(items)).to_json())
    input_fp = log.input_fingerprint(str(items))
    write_log(run_dir / "log.jsonl", [head(1 << 40), head(2, cost=1e308), head(3, cost=1e308)],
              input=dict(input_fp))  # fmt: skip
    for command in (("resume", str(run_dir)), ("runs",)):
        proc = batchdeck(*command, home=tmp_path, timeout=60)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
        assert "MemoryError" not in proc.stderr
        if command[0] == "resume":
            assert proc.returncode == 2
            assert proc.stderr.count("\n") == 1
            assert "add up to an impossible cost" in proc.stderr, proc.stderr
    far_only = run_dir / "log.jsonl"
    far_only.unlink()
    write_log(far_only, [head(1 << 40)], input=dict(input_fp))
    listed = batchdeck("runs", home=tmp_path, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "hostile" in listed.stdout
    assert orjson.loads((run_dir / "config.json").read_bytes())["input"] == str(items)
