"""TXT and Markdown: every non-blank line is one item, its surrounding whitespace removed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from engine.readers._records import Bad, Record, decode, too_long
from engine.readers._source import physical_lines


def records(stream: BinaryIO, *, max_line_bytes: int) -> Iterator[Record]:
    for line, raw in enumerate(physical_lines(stream, max_line_bytes), 1):
        if raw is None:
            yield line, too_long(max_line_bytes)
            continue
        text = decode(raw)
        if isinstance(text, Bad):
            yield line, text
        elif not text.isspace():
            yield line, text.strip()
