"""Token counts read from an answer, trusted only when they are plain, sane whole numbers.

A provider, or a proxy in front of one, may answer with no usage, or with counts
that are strings, floats, NaN, negative or 10^30. Passed on, such a number would
record $0 for a paid call, lower the recorded total (negative), switch the cap
off (NaN compares false with everything) or crash the log (its encoder refuses
integers past 64 bits). So a usage is taken whole or not at all: one unreadable
count makes the answer's usage ``unknown``, and the engine charges such an
answer its full reservation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine._results import Usage

MAX_TOKENS = 10**9
"""More tokens than any one call reads or writes: a count above it is not believed."""

UNKNOWN = Usage(unknown=True)

_MISSING: Any = object()


def read_usage(
    usage: Any,
    *,
    input: tuple[str, ...],
    output: tuple[str, ...],
    cached: tuple[str, ...] = (),
    cache_write: str | None = None,
    reasoning: str | None = None,
    required: tuple[str, ...],
) -> Usage:
    """The Usage of ``usage`` (the answer's usage object), or UNKNOWN.

    ``input``/``output`` name the counts summed into each; ``cached`` names a
    count (a subset of the input, billed cheaper) taken only when it is sane, as
    leaving it out can only raise the cost; ``required`` names the counts that must
    be there. An optional count that is there must be sane too. ``cache_write``
    (input written to the prompt cache, billed dearer) is one of the summed input
    counts, so it is as trusted as they are; ``reasoning`` (a part of the output,
    billed as output) is recorded when sane and changes no cost.
    """
    if not isinstance(usage, Mapping):
        return UNKNOWN
    counts: dict[str, int] = {}
    for name in (*input, *output):
        value = usage.get(name, _MISSING)
        if value is _MISSING or value is None:
            if name in required:
                return UNKNOWN
            value = 0
        if not _sane(value):
            return UNKNOWN
        counts[name] = value
    input_tokens = sum(counts[name] for name in input)
    output_tokens = sum(counts[name] for name in output)
    cached_tokens = next((v for v in (usage.get(n) for n in cached) if v is not None), 0)
    if not _sane(cached_tokens) or cached_tokens > input_tokens:
        cached_tokens = 0
    writes = counts.get(cache_write, 0) if cache_write is not None else 0
    reasoning_tokens = usage.get(reasoning, 0) if reasoning else 0
    if not _sane(reasoning_tokens) or reasoning_tokens > output_tokens:
        reasoning_tokens = 0
    return Usage(
        input_tokens,
        output_tokens,
        cached_tokens,
        reasoning_tokens=reasoning_tokens,
        cache_write_tokens=min(writes, input_tokens - cached_tokens),
    )


def _sane(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_TOKENS
