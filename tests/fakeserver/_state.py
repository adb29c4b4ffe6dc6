"""The server's mutable state, and the control surface tests drive it through.

Configuration, buckets, the fault picker and the statistics live in one object
owned by the event loop. ``stats()``, ``reset()`` and ``configure()`` are the
same three operations whether a test reaches them over HTTP (``/_stats``,
``/_reset``, ``/_config`` on a subprocess) or directly (an in-process server),
so fixtures hand out one ``FakeServer`` type for both.

Applying a configuration rebuilds the buckets (full), the fault picker (fresh
seeded draws, marker counts forgotten) and the latency draws; statistics are
only cleared by ``reset``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import orjson
from aiohttp import web

from tests.fakeserver._buckets import Limiter
from tests.fakeserver._config import ServerConfig
from tests.fakeserver._dialect import Call, Dialect, Tokens, estimate_tokens
from tests.fakeserver._faults import FaultPicker
from tests.fakeserver._jobs import BatchBook
from tests.fakeserver._stats import InFlightWatcher, Stats

_MISSING_PREFIX = "missing"
CACHE_MIN_TOKENS = 1024
"""The shortest prefix the providers cache."""
_P99_Z = NormalDist().inv_cdf(0.99)
_MS = 1000.0


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.initial = config
        self.in_flight_watchers: list[InFlightWatcher] = []
        """Kept across ``reset``: the gauge a test watches is the server's, not one Stats'."""
        self.stats = Stats(self.in_flight_watchers)
        self.batches = BatchBook()
        self._apply(config)

    def _apply(self, config: ServerConfig) -> None:
        self.config = config
        self.faults = FaultPicker(config.faults, seed=config.seed)
        self._limiters: dict[tuple[str, str], Limiter] = {}
        self._rng = random.Random(config.seed)
        self._missing = frozenset(config.missing_models)
        self._prompt_cache: set[tuple[str, str]] = set()
        """(model, prefix) the providers' prompt caches hold: reads of them are cheaper."""
        self._sigma = (
            math.log(config.latency_p99_ms / config.latency_ms) / _P99_Z
            if config.latency_p99_ms and config.latency_ms
            else None
        )

    # -- control surface (also served as /_stats, /_reset, /_config) --

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    def reset(self, *, config: bool = False) -> None:
        """Clear stats and batch jobs, refill buckets, forget markers; ``config`` restores the
        start-up one."""
        self.stats = Stats(self.in_flight_watchers)
        self.batches = BatchBook()
        self._apply(self.initial if config else self.config)

    def configure(self, changes: Mapping[str, Any]) -> ServerConfig:
        """Apply ``changes`` on top of the current config; raises pydantic's ValidationError."""
        self._apply(self.config.updated(changes))
        return self.config

    # -- request path --

    def is_missing(self, model: str) -> bool:
        return model.startswith(_MISSING_PREFIX) or model in self._missing

    def limiter(self, dialect: Dialect, model: str, now: float) -> Limiter:
        limiter = self._limiters.get((dialect.name, model))
        if limiter is None:
            limits = dialect.limits(self.config.limits_for(dialect.name, model))
            limiter = Limiter(limits, burst_s=self.config.burst_s, now=now)
            self._limiters[(dialect.name, model)] = limiter
        return limiter

    def tokens(self, call: Call) -> Tokens:
        """The call's tokens; a cacheable prefix seen before (``remember``) is read from the
        cache, one not seen yet is written to it (and billed so where it is).

        A structured-output schema is input, as the hosted APIs count it: Anthropic bills the
        ``tools`` parameter, schemas included, as input tokens; OpenAI's token counting
        guide says tools and schemas add input tokens; Gemini counts the whole request,
        its generation config included. Their fixed framing around it (Anthropic's tool-use
        system prompt, a few hundred tokens) is not modelled."""
        config, max_tokens = self.config, call.max_tokens
        input_tokens = estimate_tokens(call.text)
        if call.schema is not None:
            input_tokens += estimate_tokens(orjson.dumps(call.schema).decode())
        if config.output_fraction is not None and max_tokens:
            output = math.ceil(max_tokens * config.output_fraction)
        else:
            output = config.output_tokens
        if max_tokens is not None:
            output = min(output, max_tokens)
        cached, written = math.floor(input_tokens * config.cached_fraction), 0
        prefix = min(estimate_tokens(call.cacheable), input_tokens) if call.cacheable else 0
        if prefix >= CACHE_MIN_TOKENS:
            if (call.model, call.cacheable) in self._prompt_cache:
                cached = max(cached, prefix)
            elif call.cache_write_billed:
                written = min(prefix, input_tokens - cached)
        return Tokens(input_tokens, cached, output, written)

    def remember(self, call: Call) -> None:
        """The call was accepted: its cacheable prefix is in the cache from now on."""
        if call.cacheable and estimate_tokens(call.cacheable) >= CACHE_MIN_TOKENS:
            self._prompt_cache.add((call.model, call.cacheable))

    def latency_s(self) -> float:
        config = self.config
        if self._sigma is not None:
            return self._rng.lognormvariate(math.log(config.latency_ms), self._sigma) / _MS
        if config.latency_jitter_ms:
            jitter = self._rng.uniform(-config.latency_jitter_ms, config.latency_jitter_ms)
            return max(config.latency_ms + jitter, 0.0) / _MS
        return config.latency_ms / _MS


STATE = web.AppKey("state", ServerState)
"""Where the app keeps the state every handler reads."""
