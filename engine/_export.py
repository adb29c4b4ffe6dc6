"""Results as rows: the JSONL, CSV and Parquet that exports and ``--output`` write.

Every row comes from one ``ItemResult`` (and, with ``attempts``, the records it
replaced), so an export and ``--output`` have the same columns. A row carries
the result's fields and the item's original fields; in CSV and Parquet the
original columns come first, then the result's, then the parsed output's
top-level fields as ``parsed.<name>``. An original field whose name a result
field takes is kept as ``input.<name>``. Times are ISO 8601 in UTC; token
counts are whole numbers; ``cost_usd`` is empty for a model with no price.

A CSV cell is text a spreadsheet may run: ``=HYPERLINK(...)``, ``+cmd``,
``@SUM(A1)``. Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR
get a leading ``'`` (OWASP's advice for CSV injection) unless the caller asks
for raw cells; numbers stay numbers, a negative cost included.

Parquet needs ``pyarrow`` (``pip install 'batchdeck[parquet]'``), imported only
when a Parquet file is written; rows go out in row groups of ``PARQUET_ROWS``,
so a million-row export never holds a million rows. Its columns are typed: the
result's as what they are, the item's fields and ``parsed`` as text (a field's
type may differ from item to item; non-text values are JSON).
"""

from __future__ import annotations

import csv
import errno
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from engine._atomic import atomic_writer
from engine._errors import ConfigError
from engine._results import ItemResult

ExportFormat = Literal["jsonl", "csv", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet")
StatusFilter = Literal["ok", "truncated", "failed", "skipped", "all"]
STATUS_FILTERS: tuple[StatusFilter, ...] = ("ok", "truncated", "failed", "skipped", "all")

RESULT_COLUMNS = (
    "id",
    "status",
    "output",
    "parsed",
    "model",
    "finish_reason",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "usage_unknown",
    "latency_ms",
    "started_at",
    "finished_at",
    "attempts",
    "cached",
    "saved_usd",
    "error",
    "prompt_edited",
)
PROMPT_COLUMN = "prompt"
"""The rendered prompt sent (``--export-prompt``), after the result's columns."""
ATTEMPTS_COLUMN = "attempt_history"
"""Every attempt of the pair, oldest first (``--attempts``; JSONL and Parquet)."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV injection)."""
PARQUET_ROWS = 10_000
"""Rows per Parquet row group: what an export holds at once."""

PromptOf = Callable[[ItemResult], str | None]
"""The prompt a result was sent (None when it cannot be told)."""


@dataclass(frozen=True, slots=True)
class ExportChoice:
    """What an export holds: which results, and what besides their own columns."""

    status: StatusFilter = "all"
    raw_cells: bool = False
    """CSV: write text cells as they are, formulas included."""
    prompt: bool = False
    """The rendered prompt each item was sent (``--export-prompt``)."""
    attempts: bool = False
    """Every attempt of each item (``--attempts``; JSONL and Parquet)."""


ALL_RESULTS = ExportChoice()
"""The default export: every result, its own columns."""


@dataclass(frozen=True, slots=True)
class RowOptions:
    """What a row holds beyond the result's own columns."""

    prompt_of: PromptOf | None = None
    """Adds the ``prompt`` column (``--export-prompt``)."""
    attempts: bool = False
    """Adds ``attempt_history`` (``--attempts``)."""
    raw_cells: bool = False
    """CSV: write text cells as they are, formulas included."""


def format_for(path: Path, fmt: str | None = None) -> ExportFormat:
    suffixes = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
    chosen = fmt or suffixes.get(path.suffix.lower())
    if chosen not in EXPORT_FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the output format: name it .jsonl, .csv or .parquet"
        )
    return chosen


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def result_row(result: ItemResult) -> dict[str, Any]:
    """The result's own columns (error as ``kind: message``). ``cost_usd`` is empty for a
    model with no price (unknown, not $0); ``usage_unknown`` is set for a result charged
    its reservation because an answer's usage could not be believed; ``cached`` for an
    answer the response cache gave, and ``saved_usd`` what that answer kept from being
    spent (what its call would have cost; empty for an answer that was paid for);
    ``cache_write_tokens`` the input tokens written to the provider's prompt cache."""
    error = result.error
    usage = result.usage
    return {
        "id": result.id,
        "status": result.status,
        "output": result.output,
        "parsed": result.parsed,
        "model": result.model,
        "finish_reason": result.finish_reason,
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost_usd": None if result.unpriced else round(result.cost_usd, 10),
        "usage_unknown": usage.unknown or None,
        "latency_ms": round(result.latency_ms, 1),
        "started_at": _when(result.started_at),
        "finished_at": _when(result.finished_at),
        "attempts": result.attempts,
        "cached": result.cached or None,
        "saved_usd": round(result.saved_usd, 10) if result.cached else None,
        "error": None if error is None else f"{error.kind}: {error.message}",
        "prompt_edited": result.prompt_override is not None,
    }


def attempt_history(result: ItemResult, earlier: Sequence[ItemResult]) -> list[dict[str, Any]]:
    """Every attempt of the pair, oldest first: each record's failed attempts, then how that
    record ended; ``prompt_edited`` says whether the attempt was sent an edited prompt."""
    history: list[dict[str, Any]] = []
    for record in (*earlier, result):
        edited = record.prompt_override is not None
        failures = list(record.attempt_errors)
        for error in failures:
            history.append(
                {
                    "attempt": len(history) + 1,
                    "status": "failed",
                    "error": f"{error.kind}: {error.message}",
                    "prompt_edited": edited,
                }
            )
        final = record.error
        history.append(
            {
                "attempt": len(history) + 1,
                "status": record.status,
                "error": None if final is None else f"{final.kind}: {final.message}",
                "finish_reason": record.finish_reason,
                "cost_usd": None if record.unpriced else round(record.cost_usd, 10),
                "finished_at": _when(record.finished_at),
                "prompt_edited": edited,
            }
        )
    return history


def _column(name: str) -> str:
    """Where an original field goes in a row: its own name, unless a result column has it."""
    return f"input.{name}" if name in RESULT_COLUMNS or name == PROMPT_COLUMN else name


def _input_fields(result: ItemResult) -> dict[str, Any]:
    return {_column(name): value for name, value in result.fields.items() if name != "id"}


def json_row(
    result: ItemResult, earlier: Sequence[ItemResult] = (), options: RowOptions = RowOptions()
) -> dict[str, Any]:
    row = result_row(result)
    if options.prompt_of is not None:
        row[PROMPT_COLUMN] = options.prompt_of(result)
    if options.attempts:
        row[ATTEMPTS_COLUMN] = attempt_history(result, earlier)
    row.update(_input_fields(result))
    if result.simulated:
        row["simulated"] = True
    return row


def table_columns(
    field_names: Iterable[Sequence[str]], parsed_names: Sequence[str], options: RowOptions
) -> list[str]:
    """``id``, the original fields (first seen order), the result's, the prompt when asked
    for, then ``parsed.<name>``."""
    seen: dict[str, None] = {}
    for names in field_names:
        seen.update((_column(name), None) for name in names if name != "id")
    extra = [PROMPT_COLUMN] if options.prompt_of is not None else []
    if options.attempts:
        extra.append(ATTEMPTS_COLUMN)
    return [
        "id",
        *seen,
        *RESULT_COLUMNS[1:],
        *extra,
        *(f"parsed.{name}" for name in parsed_names),
    ]


def table_row(
    result: ItemResult, earlier: Sequence[ItemResult], options: RowOptions
) -> dict[str, Any]:
    """A CSV or Parquet row: nested values (parsed output, lists) as JSON text."""
    row: dict[str, Any] = dict(_input_fields(result))
    row.update(result_row(result))
    if options.prompt_of is not None:
        row[PROMPT_COLUMN] = options.prompt_of(result)
    if options.attempts:
        row[ATTEMPTS_COLUMN] = _cell(attempt_history(result, earlier))
    row["parsed"] = None if result.parsed is None else _cell(result.parsed)
    if isinstance(result.parsed, dict):
        for name, value in result.parsed.items():
            row[f"parsed.{name}"] = _cell(value)
    return row


class ResultWriter:
    """Writes JSONL or CSV rows as they come; CSV columns are fixed by the first result (and
    the schema) unless given."""

    def __init__(
        self,
        stream: IO[str],
        fmt: Literal["jsonl", "csv"],
        *,
        schema: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        options: RowOptions = RowOptions(),
    ) -> None:
        self._stream = stream
        self._fmt = fmt
        self._options = options
        self._parsed_names = list((schema or {}).get("properties", {}))
        self._columns: list[str] | None = list(columns) if columns is not None else None
        self._csv: Any = None
        self.rows = 0

    def write(self, result: ItemResult, earlier: Sequence[ItemResult] = ()) -> None:
        if self._fmt == "jsonl":
            row = json_row(result, earlier, self._options)
            self._stream.write(orjson.dumps(row, default=str).decode() + "\n")
        else:
            self._write_csv(result, earlier)
        self.rows += 1

    def _write_csv(self, result: ItemResult, earlier: Sequence[ItemResult]) -> None:
        raw = self._options.raw_cells
        if self._csv is None:
            if self._columns is None:
                parsed = result.parsed if isinstance(result.parsed, dict) else {}
                names = self._parsed_names or list(parsed)
                self._columns = table_columns([list(result.fields)], names, self._options)
            header = self._columns if raw else [_inert(c) for c in self._columns]
            csv.writer(self._stream).writerow(header)  # an input's column names are cells too
            self._csv = csv.DictWriter(self._stream, self._columns, extrasaction="ignore")
        row = table_row(result, earlier, self._options)
        if not raw:
            row = {name: _inert(value) for name, value in row.items()}
        self._csv.writerow(row)

    def flush(self) -> None:
        self._stream.flush()


def write_dict_rows(
    rows: Iterable[dict[str, Any]],
    stream: IO[str],
    fmt: Literal["jsonl", "csv"],
    columns: Sequence[str],
    *,
    raw_cells: bool = False,
) -> int:
    """Write rows already built (a pipeline's, one per item) as JSONL, or as CSV with
    ``columns`` (nested values as JSON text, formulas made inert unless ``raw_cells``)."""
    count = 0
    writer: Any = None
    for row in rows:
        if fmt == "jsonl":
            stream.write(orjson.dumps(row, default=str).decode() + "\n")
        else:
            if writer is None:
                header = list(columns) if raw_cells else [_inert(c) for c in columns]
                csv.writer(stream).writerow(header)
                writer = csv.DictWriter(stream, columns, extrasaction="ignore")
            cells = {name: _cell(value) for name, value in row.items()}
            writer.writerow(cells if raw_cells else {k: _inert(v) for k, v in cells.items()})
        count += 1
    if fmt == "csv" and writer is None:
        csv.writer(stream).writerow(columns)
    return count


def write_parquet(
    rows: Iterable[tuple[ItemResult, Sequence[ItemResult]]],
    target: IO[bytes],
    columns: Sequence[str],
    options: RowOptions,
) -> int:
    """Write ``rows`` as a Parquet file to ``target`` in row groups; returns the row count."""
    built = (table_row(result, earlier, options) for result, earlier in rows)
    return write_parquet_rows(built, target, columns)


def write_parquet_rows(
    rows: Iterable[dict[str, Any]], target: IO[bytes], columns: Sequence[str]
) -> int:
    """Write rows already built as a Parquet file, typed by each column's last name part
    (``classify.cost_usd`` is a float as ``cost_usd`` is)."""
    pa, pq = pyarrow_modules()
    schema = pa.schema([(name, _arrow_type(pa, _kind(name))) for name in columns])
    count = 0
    with pq.ParquetWriter(target, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({name: _typed(_kind(name), row.get(name)) for name in columns})
            if len(batch) >= PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def pyarrow_modules() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``; ConfigError saying how to get them if missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "--format parquet needs pyarrow: pip install 'batchdeck[parquet]'"
        ) from None
    return pa, pq


_INTEGER_COLUMNS = frozenset(
    {
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "attempts",
    }
)
_FLOAT_COLUMNS = frozenset({"cost_usd", "saved_usd", "latency_ms"})
_BOOL_COLUMNS = frozenset({"usage_unknown", "cached", "prompt_edited"})
_TIME_COLUMNS = frozenset({"started_at", "finished_at"})


def _kind(column: str) -> str:
    """What types a column: its name, or for ``step.model.cost_usd`` its last part
    (a parsed field keeps its whole name, so it is text)."""
    return column if ".parsed." in column else column.rpartition(".")[2]


def _arrow_type(pa: Any, name: str) -> Any:
    if name in _INTEGER_COLUMNS:
        return pa.int64()
    if name in _FLOAT_COLUMNS:
        return pa.float64()
    if name in _BOOL_COLUMNS:
        return pa.bool_()
    if name in _TIME_COLUMNS:
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


def _typed(name: str, value: Any) -> Any:
    """``value`` as its Parquet column holds it: result columns as they are, times as
    datetimes, anything else as text (JSON when it is not a string)."""
    if value is None or name in _INTEGER_COLUMNS or name in _FLOAT_COLUMNS:
        return value
    if name in _BOOL_COLUMNS:
        return bool(value)
    if name in _TIME_COLUMNS:
        return datetime.fromisoformat(value)
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _inert(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@contextmanager
def output_bytes(path: Path, *, mode: int) -> Iterator[IO[bytes]]:
    """A binary stream to ``path``.

    A regular file (or a new one) is written to a temp file that replaces it when the
    block ends without an error. A device or a pipe (``/dev/stdout``, a FIFO) is a
    stream, not a file to replace: it is written directly. A dir is refused at once.
    """
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if path.exists() and not path.is_file():
        with path.open("wb") as stream:
            yield stream
        return
    with atomic_writer(path, mode=mode) as raw:
        yield raw


@contextmanager
def output_text(path: Path, *, mode: int) -> Iterator[IO[str]]:
    """``output_bytes`` as UTF-8 text, newlines as written."""
    with output_bytes(path, mode=mode) as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield stream
        stream.flush()
        stream.detach()  # the binary handle is its owner's to fsync and close


def select(results: Iterable[ItemResult], status: StatusFilter) -> Iterator[ItemResult]:
    return (r for r in results if status == "all" or r.status == status)
