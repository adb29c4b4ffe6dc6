"""The checkpoint log's line format, and the one reader every consumer shares.

A log is a sequence of lines, one record each::

    <crc32 of the JSON, 8 lowercase hex digits> <space> <JSON object> <newline>

One checksum per line, not per file or per group, so that a torn write, a run
of zeros or garbage is pinned to the exact lines it damaged and everything
before it is provably intact (ALICE, OSDI '14: after a crash, the unsynced tail
of a file may hold any mix of old data, zeros and garbage). The JSON is what
orjson writes: no whitespace and every control character escaped, so a record
never contains a raw newline.

A line is *valid* when it is complete (ends in a newline), holds more than
the checksum, and starts with exactly the checksum and space ``encode``
writes. ``is_valid`` alone decides that, so recovery and the readers never
disagree about where the valid prefix ends. (A valid line whose JSON is not an
object can only come from a writer bug: ``decode`` raises LogCorrupt for it.)

``ValidLines`` walks a log in big chunks and enforces the rule every reader
follows: invalid lines after the last valid one are the *tail* a crash may
leave (counted, and moved aside by recovery); an invalid line followed by a
valid one is corruption, and raises ``LogCorrupt`` naming the line instead of
skipping it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any
from zlib import crc32

import orjson

from engine._errors import LogCorrupt

FORMAT_VERSION = 1
"""Written into every header; readers refuse a log of a newer version."""

CHUNK_BYTES = 1 << 20
"""Bytes read per system call: big enough to amortise the call, small enough to stay in cache."""


def encode(record: Mapping[str, Any]) -> bytes:
    """One complete line for ``record``, checksum and newline included."""
    body = orjson.dumps(record)
    return b"%08x %b\n" % (crc32(body), body)


def is_valid(line: bytes) -> bool:
    """True if ``line`` (one complete line without its newline) holds an intact record."""
    return len(line) > 10 and line[8] == 0x20 and line[:8] == b"%08x" % crc32(line[9:])


def decode(line: bytes) -> dict[str, Any]:
    """The record of a valid line; LogCorrupt if its JSON is not an object."""
    try:
        record = orjson.loads(line[9:])
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise LogCorrupt("a checkpoint log line has a valid checksum but holds no JSON object")
    return record


class ValidLines:
    """Iterate the valid lines of an open log, as lists, in file order.

    The file is read from its current position, which must be 0, up to ``end``
    (default: its end). After the iteration ``valid_bytes`` is the length of the
    valid prefix, ``tail_bytes`` the length of what follows it, and ``records``
    the number of valid lines. While iterating, ``line_no`` is the 1-based line number of the
    first line of the list just yielded, for error messages.
    """

    def __init__(self, file: IO[bytes], path: object, *, end: int | None = None) -> None:
        self._file = file
        self._path = path
        self._end = end
        self.valid_bytes = 0
        self.tail_bytes = 0
        self.records = 0
        self.line_no = 1

    def __iter__(self) -> Iterator[list[bytes]]:
        read, end = self._file.read, self._end
        pos = 0  # file offset of the first byte not yet split into lines
        next_line = 1
        bad_line = 0  # first invalid line after the last valid one
        pending = b""
        want = CHUNK_BYTES if end is None else min(CHUNK_BYTES, end)
        while data := read(want):
            chunk = pending + data if pending else data
            lines = chunk.split(b"\n")
            pending = lines.pop()
            good = lines
            for line in lines:
                if is_valid(line):
                    if bad_line:
                        raise self._corrupt(bad_line)
                    continue
                if not bad_line:
                    good = lines[: next(i for i, x in enumerate(lines) if x is line)]
                    bad_line = next_line + len(good)
                    self.valid_bytes = pos + sum(map(len, good)) + len(good)
            pos += len(chunk) - len(pending)
            if not bad_line:
                self.valid_bytes = pos
            elif good is lines:
                good = []  # the whole chunk is after the first bad line
            self.records += len(good)
            self.line_no = next_line
            next_line += len(lines)
            if end is not None:
                want = min(CHUNK_BYTES, end - pos - len(pending))
            if good:
                yield good
        self.tail_bytes = pos + len(pending) - self.valid_bytes

    def _corrupt(self, line_no: int) -> LogCorrupt:
        return LogCorrupt(
            f"checkpoint log {self._path}: line {line_no} is damaged but valid records follow it;"
            " refusing to skip it (restore the file, or cut it before that line by hand)"
        )
