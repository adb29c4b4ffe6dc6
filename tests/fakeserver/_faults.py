"""Which fault, if any, a request gets: a marker in its prompt, else a seeded draw.

A prompt containing ``[[fault:500]]`` fails every time; ``[[fault:500x2]]``
fails the first two times that exact prompt reaches the same provider and model,
then succeeds, so a test can assert "ok after two retries" without any timing.
Counting per provider and model keeps a multi-model run's calls independent.
Without a marker, ``faults`` rates are drawn from a ``random.Random(seed)``, so
a benchmark's fault mix is reproducible.

A marker is read before the rate limiter runs (an unknown kind is a 400 at
once) but only consumed after the request is admitted: a 429 from the bucket
does not use up one of the ``x2`` failures.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tests.fakeserver._config import FAULT_KINDS
from tests.fakeserver._dialect import BadRequest

_MARKER_PREFIX = "[[fault:"
_MARKER = re.compile(r"\[\[fault:([a-z0-9_]+?)(?:x(\d+))?\]\]")


@dataclass(frozen=True, slots=True)
class Marker:
    kind: str
    times: int | None
    """Fail only the first ``times`` sightings; ``None`` fails every time."""


def find_marker(text: str) -> Marker | None:
    """The fault marker in a prompt; raises ``BadRequest`` for an unknown kind."""
    if _MARKER_PREFIX not in text:
        return None
    match = _MARKER.search(text)
    if match is None:
        return None
    kind, times = match.group(1), match.group(2)
    if kind not in FAULT_KINDS:
        raise BadRequest(f"unknown fault marker {match.group(0)!r}; known: {list(FAULT_KINDS)}")
    return Marker(kind, None if times is None else int(times))


class FaultPicker:
    def __init__(self, rates: Mapping[str, float], *, seed: int) -> None:
        self._rates = [(kind, rate) for kind, rate in rates.items() if rate > 0]
        self._rng = random.Random(seed)
        self._sightings: dict[tuple[str, str, str], int] = {}

    def pick(self, marker: Marker | None, key: tuple[str, str, str]) -> str | None:
        """The fault for an admitted request; ``key`` is (provider, model, prompt)."""
        if marker is not None:
            if marker.times is None:
                return marker.kind
            seen = self._sightings.get(key, 0)
            self._sightings[key] = seen + 1
            return marker.kind if seen < marker.times else None
        if not self._rates:
            return None
        draw = self._rng.random()
        for kind, rate in self._rates:
            if draw < rate:
                return kind
            draw -= rate
        return None
