"""JSONL: one JSON object per line; blank lines are skipped but still counted.

orjson parses the raw bytes (it checks UTF-8 itself), so a good line is
decoded once; only a failing line is looked at again to say whether its bytes
or its JSON are wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import orjson

from engine.readers._records import Bad, Record, decode, too_long, type_name
from engine.readers._source import physical_lines


def records(stream: BinaryIO, *, max_line_bytes: int) -> Iterator[Record]:
    loads = orjson.loads
    for line, raw in enumerate(physical_lines(stream, max_line_bytes), 1):
        if raw is None:
            yield line, too_long(max_line_bytes)
            continue
        if raw.isspace():
            continue
        try:
            value = loads(raw)
        except orjson.JSONDecodeError as exc:
            text = decode(raw)
            malformed = Bad(f"malformed JSON: {exc.msg} at column {exc.colno}")
            yield line, text if isinstance(text, Bad) else malformed
            continue
        if type(value) is dict:
            yield line, value
        else:
            yield line, Bad(f"expected a JSON object, got {type_name(value)}")
