"""What the server saw, for tests and benchmarks to assert on (``GET /_stats``).

Counting happens on the request path, so it is plain attribute arithmetic on
one object owned by the event loop: no locks, no per-request allocation beyond
one float per admitted request (its Unix time, so a benchmark can measure the
achieved rate over any window of its own clock). ``process_cpu_s`` is the
server process's CPU time, so a benchmark can show what the server cost.

``in_flight`` is a gauge of requests being answered (``max_in_flight`` its
peak). A test on an in-process server can also be told each time the gauge
moves (``in_flight_watchers``), so it waits on the event, not on a poll.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

InFlightWatcher = Callable[[int], None]
"""Called with the number of requests in flight each time it changes."""


class _ModelStats:
    __slots__ = (
        "accepted",
        "cache_write_tokens",
        "cached_tokens",
        "input_tokens",
        "output_tokens",
        "rate_limited",
    )

    def __init__(self) -> None:
        self.accepted = 0
        self.rate_limited = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        """Input tokens reported as read from the prompt cache (part of ``input_tokens``)."""
        self.cache_write_tokens = 0
        """Input tokens reported as written to it and billed so (part of ``input_tokens``)."""


class Stats:
    def __init__(self, in_flight_watchers: Sequence[InFlightWatcher] = ()) -> None:
        self.started_at = time.time()
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.accepted_times: list[float] = []
        self.by_model: dict[str, _ModelStats] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_watchers = in_flight_watchers

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        for watcher in self.in_flight_watchers:
            watcher(self.in_flight)

    def end(self) -> None:
        self.in_flight -= 1
        for watcher in self.in_flight_watchers:
            watcher(self.in_flight)

    def status(self, code: int) -> None:
        self.by_status[code] += 1

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def accepted(
        self,
        model_key: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        self.accepted_times.append(time.time())
        model = self._model(model_key)
        model.accepted += 1
        model.input_tokens += input_tokens
        model.output_tokens += output_tokens
        model.cached_tokens += cached_tokens
        model.cache_write_tokens += cache_write_tokens

    def rate_limited(self, model_key: str) -> None:
        self._model(model_key).rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        models = self.by_model.values()
        return {
            "started_at": self.started_at,
            "requests": self.requests,
            "by_status": {str(code): n for code, n in sorted(self.by_status.items())},
            "rate_limited": sum(m.rate_limited for m in models),
            "faults": dict(self.faults),
            "accepted": len(self.accepted_times),
            "accepted_times": list(self.accepted_times),
            "input_tokens": sum(m.input_tokens for m in models),
            "output_tokens": sum(m.output_tokens for m in models),
            "by_model": {
                key: {name: getattr(m, name) for name in _ModelStats.__slots__}
                for key, m in self.by_model.items()
            },
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "process_cpu_s": time.process_time(),
        }

    def _model(self, key: str) -> _ModelStats:
        model = self.by_model.get(key)
        if model is None:
            model = self.by_model[key] = _ModelStats()
        return model
