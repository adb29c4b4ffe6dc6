"""A set of string keys in 8 bytes each, for the million-item runs.

A Python ``set`` of a million short ids costs ~100 MB (the str objects plus the
table); readers need one for duplicate ids and resume needs one for finished
items, both at once. This keeps only a 64-bit hash per key in an open-addressed
``array('Q')``: 16 MB at 1M keys. Two keys share a hash with odds ~1e-8 at 1M
keys; the cost of that is one item treated as a duplicate or as done.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

_EMPTY = 0
_MASK64 = (1 << 64) - 1


def _hash(key: str) -> int:
    # The set lives in one process, so str's own (salted, cached) hash will do; 0 marks empty.
    return (hash(key) & _MASK64) or 1


class IdSet:
    __slots__ = ("_len", "_mask", "_table")

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._table = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._len = 0
        for key in keys:
            self.add(key)

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        h = _hash(key)
        table, mask = self._table, self._mask
        i = h & mask
        while True:
            slot = table[i]
            if slot == h:
                return True
            if slot == _EMPTY:
                return False
            i = (i + 1) & mask

    def add(self, key: str) -> bool:
        """Add ``key``; True if it was not there before."""
        if not self._insert(_hash(key)):
            return False
        self._len += 1
        if self._len * 2 > self._mask:
            self._grow()
        return True

    def _insert(self, h: int) -> bool:
        table, mask = self._table, self._mask
        i = h & mask
        while True:
            slot = table[i]
            if slot == h:
                return False
            if slot == _EMPTY:
                table[i] = h
                return True
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(8 * 2 * len(old)))
        self._mask = 2 * len(old) - 1
        for h in old:
            if h != _EMPTY:
                self._insert(h)
