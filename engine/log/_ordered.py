"""A run's results in input order, with the records each replaced, from a completion-order log.

Workers finish items out of order, retries and resumes append later records,
so the log is in completion order; an export wants the input's order (by line,
then by the run's model order). The log is read once to note, for every result
record, its sort key and where it is (three 8-byte numbers, sorted in chunks as
they come), then the chunks are merged and each record is read back with one
``pread``: memory grows by ~24 bytes a record, never by a result, and a million
records export without holding a million results.

A pair with several records (a failure retried later) is exported once, from
its latest record (latest wins, as everywhere); the records it replaced are
kept apart only for pairs that have them (``earlier``), so an export can show
every attempt.
"""

from __future__ import annotations

import heapq
import os
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine._errors import LogCorrupt
from engine._idset import IdSet
from engine._results import ItemResult
from engine.log._format import decode
from engine.log._records import MAX_TOKENS, RESULT_START, result_from_record
from engine.log._scan import _head, _located, _valid_prefix

CHUNK = 1 << 16
"""Records sorted at a time before the chunks are merged."""


@dataclass(frozen=True, slots=True)
class Ordered:
    result: ItemResult
    """The pair's latest result."""
    earlier: tuple[ItemResult, ...] = ()
    """Records it replaced, oldest first (only when asked for)."""


def results_in_input_order(
    path: str | os.PathLike[str], models: Sequence[str], *, earlier: bool = False
) -> Iterator[Ordered]:
    """The latest result of every (model, id) pair, by line, then by ``models``' order (a
    model not in it comes after them); ``earlier``: with the records each replaced."""
    path = Path(path)
    slots = len(models) + 1
    slot_of = {model: index for index, model in enumerate(models)}
    with open(path, "rb", buffering=0) as f:
        chunks: list[tuple[array[int], array[int], array[int]]] = []
        pending: list[tuple[int, int, int]] = []
        seen = IdSet()
        last_at: dict[str, int] = {}  # only keys with several records
        pos = 0
        with _valid_prefix(f, path) as lines_of:
            for lines in lines_of:
                line = b""
                try:
                    for line in lines:
                        if line.startswith(RESULT_START, 9):
                            model, id, item_line = _head(line)[:3]
                            if type(item_line) is not int or not 0 <= item_line <= MAX_TOKENS:
                                raise LogCorrupt(f"a result record with line {item_line!r:.40}")
                            key = f"{model}\x00{id}"
                            if not seen.add(key):
                                last_at[key] = pos
                            order = item_line * slots + slot_of.get(model, slots - 1)
                            pending.append((order, pos, len(line)))
                            if len(pending) >= CHUNK:
                                chunks.append(_sorted(pending))
                                pending = []
                        pos += len(line) + 1
                except LogCorrupt as exc:
                    raise _located(exc, path, lines_of, lines, line) from None
        del seen
        if pending:
            chunks.append(_sorted(pending))
        del pending
        replaced: dict[str, list[ItemResult]] = {}
        for _, at, size in heapq.merge(*(zip(*chunk, strict=True) for chunk in chunks)):
            record = decode(os.pread(f.fileno(), size, at))
            if last_at:
                model, id = record["head"][:2]
                key = f"{model}\x00{id}"
                last = last_at.get(key)
                if last is not None and last != at:  # replaced by a later record
                    if earlier:
                        replaced.setdefault(key, []).append(result_from_record(record))
                    continue
                yield Ordered(result_from_record(record), tuple(replaced.pop(key, ())))
            else:
                yield Ordered(result_from_record(record))


def _sorted(entries: list[tuple[int, int, int]]) -> tuple[array[int], array[int], array[int]]:
    entries.sort()
    orders, positions, sizes = array("q"), array("q"), array("q")
    for order, at, size in entries:
        orders.append(order)
        positions.append(at)
        sizes.append(size)
    return orders, positions, sizes
