"""A growable column of strings that the garbage collector does not walk.

A list of a million strings is visited element by element in every full
collection: ~50 ms at 1M rows on the 2-core machines, a visible hitch every few
seconds while a run streams in. CPython stops tracking a tuple once a
collection finds it holds only untracked objects (strings are never tracked),
so this column stores fixed-size chunks and turns a chunk into a tuple once it
is well behind the newest row. The newest chunks stay lists because rows
change while in flight (a start, then a finish a few thousand rows later);
writing into a sealed chunk rebuilds that one small tuple, which happens only
for late changes (a slow call, a retry from the UI).
"""

from __future__ import annotations

from typing import Final

_SHIFT: Final = 8
_CHUNK: Final = 1 << _SHIFT
_MASK: Final = _CHUNK - 1
_OPEN_CHUNKS: Final = 16
"""Chunks kept as lists behind the newest row: 4,096 rows of in-flight window."""


class StrColumn:
    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: list[list[str] | tuple[str, ...]] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, value: str) -> None:
        offset = self._size & _MASK
        chunks = self._chunks
        if offset == 0:
            chunks.append([value])
            seal = len(chunks) - 1 - _OPEN_CHUNKS
            if seal >= 0:
                chunks[seal] = tuple(chunks[seal])
        else:
            chunk = chunks[-1]
            assert isinstance(chunk, list)
            chunk.append(value)
        self._size += 1

    def __getitem__(self, position: int) -> str:
        if not 0 <= position < self._size:
            raise IndexError(position)
        return self._chunks[position >> _SHIFT][position & _MASK]

    def __setitem__(self, position: int, value: str) -> None:
        if not 0 <= position < self._size:
            raise IndexError(position)
        index = position >> _SHIFT
        chunk = self._chunks[index]
        offset = position & _MASK
        if isinstance(chunk, list):
            chunk[offset] = value
        else:
            self._chunks[index] = (*chunk[:offset], value, *chunk[offset + 1 :])

    def find(self, text: str, start: int = 0) -> int | None:
        """The first position from ``start`` whose string contains ``text``, else None.

        A chunk is searched as one string (its strings joined by NUL, which none is
        assumed to hold): one C-level ``in`` per 256 rows rather than a Python step per
        row, so a miss over a million rows costs tens of milliseconds, not hundreds."""
        if "\0" in text:
            return next((p for p in range(start, self._size) if text in self[p]), None)
        first = start >> _SHIFT
        for index in range(first, len(self._chunks)):
            chunk = self._chunks[index]
            if text not in "\0".join(chunk):
                continue
            base = index << _SHIFT
            for offset in range(start - base if index == first else 0, len(chunk)):
                if text in chunk[offset]:
                    return base + offset
        return None
