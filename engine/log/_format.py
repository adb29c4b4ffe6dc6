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

import os
from collections.abc import Iterator, Mapping
from typing import IO, Any
from zlib import crc32

import orjson

from engine._errors import LogCorrupt

FORMAT_VERSION = 2
"""Written into every header; readers refuse a log of a newer version. Version 2 added
the ``truncated`` status, which a version-1 reader would take for damage; a version-1
log reads as it always did."""

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
    (default: its size when the iterator is made, so a log still being written
    reads as a snapshot). After the iteration ``valid_bytes`` is the length of
    the valid prefix, ``tail_bytes`` the length of what follows it in that
    snapshot, ``bad_line`` the number of the first line of that tail (0: none)
    and ``records`` the number of valid lines. While iterating, ``line_no`` is
    the 1-based line number of the first line of the list just yielded.

    ``verify=False`` skips the checksums, for bytes known to be valid: a second
    pass, or the prefix ``valid_end`` found while a ``Checker`` verifies it.
    """

    def __init__(
        self, file: IO[bytes], path: object, *, end: int | None = None, verify: bool = True
    ) -> None:
        self._file = file
        self._path = path
        self._size = os.fstat(file.fileno()).st_size
        self._end = self._size if end is None else end
        self._verify = verify
        self.valid_bytes = 0
        self.tail_bytes = 0
        self.bad_line = 0
        self.records = 0
        self.line_no = 1

    def __iter__(self) -> Iterator[list[bytes]]:
        read, end, verify = self._file.read, self._end, self._verify
        pos = 0  # file offset of the first byte not yet split into lines
        next_line = 1
        bad_line = 0  # first invalid line after the last valid one
        pending = b""
        want = min(CHUNK_BYTES, end)
        while data := read(want):
            chunk = pending + data if pending else data
            lines = chunk.split(b"\n")
            pending = lines.pop()
            good = lines
            for line in lines if verify else ():
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
            want = min(CHUNK_BYTES, end - pos - len(pending))
            if good:
                yield good
        self.tail_bytes = self._size - self.valid_bytes
        self.bad_line = bad_line or (next_line if self.tail_bytes else 0)

    def _corrupt(self, line_no: int) -> LogCorrupt:
        return LogCorrupt(
            f"checkpoint log {self._path}: line {line_no} is damaged but valid records follow it;"
            " refusing to skip it (restore the file, or cut it before that line by hand)"
        )


def valid_end(file: IO[bytes], size: int) -> int:
    """The offset just after the last valid line of ``file`` (0: none), read from the end.

    Costs the size of the tail, not of the log: the tail is what a crash leaves.
    """
    return next((end for end, line in _lines_backwards(file, size) if is_valid(line)), 0)


def _lines_backwards(file: IO[bytes], size: int) -> Iterator[tuple[int, bytes]]:
    """The complete lines of ``file``, last first, each with the offset just after its newline.

    Bytes after the last newline are no line at all (a torn write) and are skipped.
    Memory stays at one chunk plus the longest line.
    """
    start, buf = size, b""  # buf holds the file's bytes from offset ``start``
    cut = -1  # index in buf of the newline that ends the next line to yield; -1: none yet
    while True:
        if cut < 0:
            cut = buf.rfind(b"\n")
        if cut >= 0:
            previous = buf.rfind(b"\n", 0, cut)
            if previous >= 0 or start == 0:
                yield start + cut + 1, buf[previous + 1 : cut]
                cut = previous
                if cut < 0:
                    return  # that was the first line of the file
                continue
        if start == 0:
            return
        chunk_start = max(0, start - CHUNK_BYTES)
        file.seek(chunk_start)
        data = file.read(start - chunk_start)
        if cut >= 0:  # keep the part of the current line read so far
            buf = data + buf[: cut + 1]
            cut += len(data)
        else:  # no newline after these bytes: a torn line, dropped
            buf = data
        start = chunk_start
