"""CSV with a header row: the header names the fields, each later record is one item.

The stdlib parser does the quoting (embedded commas, quotes and newlines); it is
fed physical lines by ``_Feed``, which counts them, so an item's line is the
line its record starts on, and which raises ``_BadLine`` for a line that is not
UTF-8 or is over-long. That aborts only the record being read: the parser starts
afresh on the next line. The parser is strict, so broken quoting is a bad
record rather than a silently merged one. A single field is still bounded by
``csv.field_size_limit()`` (process-wide, left as it is); a longer one is a bad
record too.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

from engine._errors import InputError
from engine.readers._records import Bad, Record, decode, too_long
from engine.readers._source import physical_lines


class _BadLine(Exception):
    def __init__(self, line: int, bad: Bad) -> None:
        super().__init__(bad.reason)
        self.line = line
        self.bad = bad


class _Feed:
    """Decoded physical lines for ``csv.reader``, counted."""

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self._lines = physical_lines(stream, max_line_bytes)
        self._max_line_bytes = max_line_bytes
        self.line = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.line += 1
        if raw is None:
            raise _BadLine(self.line, too_long(self._max_line_bytes))
        text = decode(raw)
        if isinstance(text, Bad):
            raise _BadLine(self.line, text)
        return text


def _rows(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, list[str] | Bad]]:
    """Each non-blank record with the line it starts on, or what is wrong with it."""
    feed = _Feed(stream, max_line_bytes)
    reader = csv.reader(feed, strict=True)
    while True:
        start = feed.line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except _BadLine as exc:
            where = "" if exc.line == start else f" on line {exc.line} of this record"
            yield start, Bad(exc.bad.reason + where)
            continue
        except csv.Error as exc:
            yield start, Bad(f"bad CSV: {exc}")
            continue
        if any(cell and not cell.isspace() for cell in row):
            yield start, row


def records(stream: BinaryIO, *, max_line_bytes: int, name: str) -> Iterator[Record]:
    rows = _rows(stream, max_line_bytes)
    header = _header(next(rows, None), name)
    width = len(header)
    for line, row in rows:
        if isinstance(row, Bad):
            yield line, row
        elif len(row) != width:
            yield line, Bad(f"expected {width} columns, got {len(row)}")
        else:
            yield line, dict(zip(header, row, strict=True))


def count(stream: BinaryIO, *, max_line_bytes: int) -> int:
    """Records after the header, parsed for their quoting but not turned into items."""
    return max(sum(1 for _ in _rows(stream, max_line_bytes)) - 1, 0)


def _header(first: tuple[int, list[str] | Bad] | None, name: str) -> list[str]:
    if first is None:
        raise InputError(f"no items in {name}: no CSV header row")
    line, row = first
    if isinstance(row, Bad):
        raise InputError(f"cannot read the CSV header of {name} (line {line}): {row.reason}")
    header = [cell.strip() for cell in row]
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise InputError(f"duplicate column {column!r} in the CSV header of {name}")
        seen.add(column)
    return header
