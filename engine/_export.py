"""Results as rows: the JSONL and CSV that ``--output`` writes live and ``export`` writes after.

Both paths go through ``ResultWriter``, so a live output file and a later export
of the same run have the same columns. A row carries the result's fields and
the item's original fields; in CSV the original columns come first, then the
result's, then the parsed output's top-level fields as ``parsed.<name>``. An
original field whose name a result field takes is kept as ``input.<name>``.

A CSV cell is text a spreadsheet may run: ``=HYPERLINK(...)``, ``+cmd``,
``@SUM(A1)``. Text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR
get a leading ``'`` (OWASP's advice for CSV injection) unless the caller asks
for raw cells; numbers stay numbers, a negative cost included.
"""

from __future__ import annotations

import csv
import errno
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from engine._atomic import atomic_writer
from engine._errors import ConfigError
from engine._results import ItemResult

ExportFormat = Literal["jsonl", "csv"]
StatusFilter = Literal["ok", "failed", "skipped", "all"]

RESULT_COLUMNS = (
    "id",
    "status",
    "output",
    "parsed",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "usage_unknown",
    "latency_ms",
    "attempts",
    "cached",
    "error",
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV injection)."""


def format_for(path: Path, fmt: str | None = None) -> ExportFormat:
    chosen = fmt or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    if chosen not in ("jsonl", "csv"):
        raise ConfigError(f"{path}: cannot tell the output format: name it .jsonl or .csv")
    return chosen  # type: ignore[return-value]


def result_row(result: ItemResult) -> dict[str, Any]:
    """The result's own columns (error as ``kind: message``). ``cost_usd`` is empty for a
    model with no price (unknown, not $0); ``usage_unknown`` is set for a result charged
    its reservation because an answer's usage could not be believed; ``cached`` for an
    answer the response cache gave."""
    error = result.error
    return {
        "id": result.id,
        "status": result.status,
        "output": result.output,
        "parsed": result.parsed,
        "model": result.model,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cost_usd": None if result.unpriced else round(result.cost_usd, 10),
        "usage_unknown": result.usage.unknown or None,
        "latency_ms": round(result.latency_ms, 1),
        "attempts": result.attempts,
        "cached": result.cached or None,
        "error": None if error is None else f"{error.kind}: {error.message}",
    }


def _column(name: str) -> str:
    """Where an original field goes in a row: its own name, unless a result column has it."""
    return f"input.{name}" if name in RESULT_COLUMNS else name


def _input_fields(result: ItemResult) -> dict[str, Any]:
    return {_column(name): value for name, value in result.fields.items() if name != "id"}


def json_row(result: ItemResult) -> dict[str, Any]:
    row = result_row(result)
    row.update(_input_fields(result))
    if result.simulated:
        row["simulated"] = True
    return row


class ResultWriter:
    """Writes rows as they come; CSV columns are fixed by the first result (and the schema)."""

    def __init__(
        self,
        stream: IO[str],
        fmt: ExportFormat,
        *,
        schema: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        raw_cells: bool = False,
    ) -> None:
        """``raw_cells`` writes CSV text cells as they are, formulas included."""
        self._stream = stream
        self._fmt = fmt
        self._raw_cells = raw_cells
        self._parsed_names = list((schema or {}).get("properties", {}))
        self._columns: list[str] | None = list(columns) if columns is not None else None
        self._csv: Any = None
        self.rows = 0

    def write(self, result: ItemResult) -> None:
        if self._fmt == "jsonl":
            self._stream.write(orjson.dumps(json_row(result), default=str).decode() + "\n")
        else:
            self._write_csv(result)
        self.rows += 1

    def _write_csv(self, result: ItemResult) -> None:
        fields = _input_fields(result)
        parsed = result.parsed if isinstance(result.parsed, dict) else {}
        if self._csv is None:
            if self._columns is None:
                names = self._parsed_names or list(parsed)
                self._columns = csv_columns([list(result.fields)], names)
            header = self._columns if self._raw_cells else [_inert(c) for c in self._columns]
            csv.writer(self._stream).writerow(header)  # an input's column names are cells too
            self._csv = csv.DictWriter(self._stream, self._columns, extrasaction="ignore")
        row: dict[str, Any] = dict(fields)
        row.update(result_row(result))
        row["parsed"] = None if result.parsed is None else _cell(result.parsed)
        for name, value in parsed.items():
            row[f"parsed.{name}"] = _cell(value)
        if not self._raw_cells:
            row = {name: _inert(value) for name, value in row.items()}
        self._csv.writerow(row)

    def flush(self) -> None:
        self._stream.flush()


def csv_columns(field_names: Iterable[Sequence[str]], parsed_names: Sequence[str]) -> list[str]:
    """``id``, the original fields (first seen order), the result's, then ``parsed.<name>``."""
    seen: dict[str, None] = {}
    for names in field_names:
        seen.update((_column(name), None) for name in names if name != "id")
    return ["id", *seen, *RESULT_COLUMNS[1:], *(f"parsed.{name}" for name in parsed_names)]


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
def output_text(path: Path, *, mode: int) -> Iterator[IO[str]]:
    """A text stream (UTF-8, newlines as written) to ``path``.

    A regular file (or a new one) is written to a temp file that replaces it when the
    block ends without an error. A device or a pipe (``/dev/stdout``, a FIFO) is a
    stream, not a file to replace: it is written directly. A dir is refused at once.
    """
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8", newline="") as stream:
            yield stream
        return
    with atomic_writer(path, mode=mode) as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield stream
        stream.flush()
        stream.detach()  # the binary handle is atomic_writer's to fsync and close


def select(results: Iterable[ItemResult], status: StatusFilter) -> Iterator[ItemResult]:
    return (r for r in results if status == "all" or r.status == status)


def write_results(
    results: Iterable[ItemResult],
    stream: IO[str],
    fmt: ExportFormat,
    *,
    schema: dict[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    raw_cells: bool = False,
) -> int:
    writer = ResultWriter(stream, fmt, schema=schema, columns=columns, raw_cells=raw_cells)
    for result in results:
        writer.write(result)
    writer.flush()
    return writer.rows
