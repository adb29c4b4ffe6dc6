"""A JSON array of items, streamed: objects, or strings that become ``{"text": ...}``.

The file is never loaded whole. ``_Splitter`` walks it in chunks and cuts out
the bytes between the array's top-level commas: it only tracks strings and
bracket depth, jumping between interesting bytes with a regex, and leaves the
real parsing of each element to orjson. So one malformed element is one bad
item, and an element over ``max_line_bytes`` is dropped as it streams by. Items
are numbered by their position in the array (their ``line``), since a minified
array has all of them on one line. This costs ~10 us an element; JSONL is the
format for big inputs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO, Final

import orjson

from engine._errors import InputError
from engine.readers._records import Bad, Payload, Record, decode, type_name
from engine.readers._source import BOM

_CHUNK: Final = 1 << 16
_OUTSIDE: Final = re.compile(rb'["\[\]{},]')
_INSIDE: Final = re.compile(rb'["\\]')
_WHITESPACE: Final = b" \t\r\n"


class _Splitter:
    """Yields each element's bytes, or None for one over the bound, in array order."""

    def __init__(self, stream: BinaryIO, max_bytes: int, name: str) -> None:
        self._stream = stream
        self.max_bytes = max_bytes
        self._name = name
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._pieces: list[bytes] = []
        self._size = 0
        self.elements = 0
        self.closed = False
        self.trailing = False
        """Something other than whitespace follows the array."""

    def __iter__(self) -> Iterator[bytes | None]:
        read = self._stream.read
        first = read(max(_CHUNK, len(BOM))).removeprefix(BOM)
        for chunk in itertools.chain((first,), iter(partial(read, _CHUNK), b"")):
            if self.closed:
                self.trailing = self.trailing or bool(chunk.strip(_WHITESPACE))
            else:
                yield from self._scan(chunk)
        if not self.closed and self._depth > 0:
            self._depth = 0
            yield self._take(b"")

    def _scan(self, chunk: bytes) -> Iterator[bytes | None]:
        pos = 0
        start = 0 if self._depth else len(chunk)
        end = len(chunk)
        while pos < end:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                    pos += 1
                    continue
                match = _INSIDE.search(chunk, pos)
                if match is None:
                    break
                pos = match.end()
                if chunk[match.start()] == 0x5C:  # backslash
                    self._escaped = True
                else:
                    self._in_string = False
                continue
            match = _OUTSIDE.search(chunk, pos)
            if self._depth == 0:
                self._open(chunk, pos, match)
                if match is None:
                    break
                pos = start = match.end()
                continue
            if match is None:
                break
            pos = match.end()
            byte = chunk[match.start()]
            if byte == 0x22:  # "
                self._in_string = True
            elif byte in b"[{":
                self._depth += 1
            elif byte in b"]}":
                self._depth -= 1
                if self._depth == 0:
                    last = self._take(chunk[start : match.start()])
                    self.closed = True
                    self.trailing = bool(chunk[pos:].strip(_WHITESPACE))
                    yield last
                    return
            elif self._depth == 1:  # a top-level comma
                yield self._take(chunk[start : match.start()])
                start = pos
        if self._depth:
            self._keep(chunk[start:])

    def _open(self, chunk: bytes, pos: int, match: re.Match[bytes] | None) -> None:
        """The array must be the first thing in the file."""
        stop = len(chunk) if match is None else match.start()
        if chunk[pos:stop].strip(_WHITESPACE) or (match is not None and match[0] != b"["):
            raise InputError(
                f"{self._name} is not a JSON array of items (use --format jsonl for one per line)"
            )
        if match is not None:
            self._depth = 1

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size <= self.max_bytes:
            self._pieces.append(piece)
        else:
            self._pieces.clear()

    def _take(self, last: bytes) -> bytes | None:
        self._keep(last)
        element = b"".join(self._pieces) if self._size <= self.max_bytes else None
        self._pieces.clear()
        self._size = 0
        self.elements += 1
        return element


def records(stream: BinaryIO, *, max_line_bytes: int, name: str) -> Iterator[Record]:
    for index, element in _elements(_Splitter(stream, max_line_bytes, name)):
        yield index, element if isinstance(element, Bad) else _parse(element)


def count(stream: BinaryIO, *, max_line_bytes: int, name: str) -> int:
    """Elements, cut out but not parsed."""
    return sum(1 for _ in _elements(_Splitter(stream, max_line_bytes, name)))


def _elements(splitter: _Splitter) -> Iterator[tuple[int, bytes | Bad]]:
    for index, element in enumerate(splitter, 1):
        if element is None:
            yield index, Bad(f"array element longer than {splitter.max_bytes} bytes")
            continue
        element = element.strip(_WHITESPACE)
        if element:
            yield index, element
        elif not (splitter.closed and index == 1):  # `[]` holds no element at all
            yield index, Bad("empty array element (a stray comma?)")
    if splitter.trailing:
        yield splitter.elements + 1, Bad("unexpected data after the end of the JSON array")


def _parse(element: bytes) -> Payload:
    try:
        value = orjson.loads(element)
    except orjson.JSONDecodeError as exc:
        text = decode(element)
        malformed = Bad(f"malformed JSON: {exc.msg} at character {exc.pos + 1} of the element")
        return text if isinstance(text, Bad) else malformed
    if type(value) is dict or type(value) is str:
        return value
    return Bad(f"expected an object or a string, got {type_name(value)}")
