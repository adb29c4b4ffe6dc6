"""The offline ``simulate`` provider: the rehearsal run, with no key and no network.

It behaves like the named real model would for everything batchdeck controls:
token counts estimated from the text, that model's prices (looked up by the
engine as for any model), a latency drawn around ``latency_ms``, and failures
(rate limits, server errors, timeouts) raised as the same ``ProviderError``s a
real provider raises, so they travel the real retry path. Output is
deterministic for a given seed and prompt, and marked ``[simulated]``.

A debate's revision on the built-in revise prompt is answered as a model that can be
persuaded: it takes up the first other model's answer, or keeps its own about once in
``DISSENT``. So on simulate revisions move towards each other, and a run with a debate
shows what the debate changed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from statistics import NormalDist
from typing import Any

import anyio
import orjson

from engine._config import SimSettings
from engine._errors import ErrorKind, ProviderError
from engine._results import Usage
from engine._schema import example_instance
from engine._steps import REVISE_OPENING, THEIR_ANSWERS, YOUR_ANSWER
from engine._tokens import SIMULATED, estimate_tokens
from engine.providers._base import CallRequest, CallResult
from engine.providers._sim_batch import SimBatchApi

_FAILURES: tuple[tuple[ErrorKind, str, float], ...] = (
    ("rate_limited", "simulated 429: rate limit reached for requests", 0.5),
    ("server_error", "simulated 500: the server had an error processing the request", 0.8),
    ("timeout", "simulated timeout: no response within the deadline", 1.0),
)
_SUMMARY_WORDS = 16
DISSENT = 3
"""A model answers about one prompt in this many its own way (``answer_text``)."""
_NORMAL = NormalDist()


SIMULATE = "simulate"


class SimulateProvider:
    name = SIMULATE

    def __init__(
        self, settings: SimSettings, *, session: int = 0, batch_store: Path | None = None
    ) -> None:
        self._settings = settings
        self._batch_store = batch_store
        self._batch: SimBatchApi | None = None
        self._session = session
        """Salts the failure draws, so a later execution of the same run fails differently."""

    def _unit(self, key: int, salt: int) -> float:
        """A deterministic number in [0, 1) from the prompt's key, the seed and a salt."""
        return zlib.crc32(b"%d:%d:%d" % (self._settings.seed, key, salt)) / 2**32

    async def call(self, request: CallRequest) -> CallResult:
        key = zlib.crc32(request.prompt.encode())
        attempt = request.attempt
        latency_s = self._latency_s(key, attempt)
        if latency_s > request.timeout_s:
            await anyio.sleep(request.timeout_s)
            raise ProviderError("timeout", f"simulated timeout after {request.timeout_s:g}s")
        if latency_s:
            await anyio.sleep(latency_s)
        self._maybe_fail(key, attempt)
        return answer(request)

    def batch_api(self) -> SimBatchApi | None:
        """Jobs kept in the run's dir, ending ``sim_batch_s`` after they were submitted."""
        if self._batch_store is None:
            return None
        if self._batch is None:
            self._batch = SimBatchApi(self._settings, self._batch_store, answer)
        return self._batch

    def _latency_s(self, key: int, attempt: int) -> float:
        median = self._settings.latency_ms / 1000
        if median <= 0:
            return 0.0
        # Log-normal around the median (sigma 0.35), as real latencies are skewed right.
        u = min(max(self._unit(key, 2 * attempt), 1e-9), 1 - 1e-9)
        return median * math.exp(0.35 * _NORMAL.inv_cdf(u))

    def _maybe_fail(self, key: int, attempt: int) -> None:
        rate = self._settings.failure_rate
        if rate <= 0 or self._unit(key ^ self._session, 2 * attempt + 1) >= rate:
            return
        which = self._unit(key, 1000 + attempt)
        for kind, message, upto in _FAILURES:
            if which < upto:
                retry_after = 0.05 if kind == "rate_limited" else None
                raise ProviderError(kind, message, retry_after=retry_after)

    async def aclose(self) -> None:
        return None


def answer(request: CallRequest) -> CallResult:
    """The deterministic answer to ``request``, online or in a simulated batch job; tokens
    counted as the engine estimates them."""
    text = answer_text(request.model, request.prompt, request.schema)
    output_tokens = min(request.max_tokens, estimate_tokens(text))
    input_tokens = SIMULATED.input_tokens(request.system, request.prompt)
    return CallResult(
        text=text,
        usage=Usage(input_tokens, output_tokens),
        finish_reason="stop" if output_tokens < request.max_tokens else "length",
        simulated=True,
    )


def answer_text(model: str, prompt: str, schema: Mapping[str, Any] | None) -> str:
    """What ``simulate`` answers ``prompt`` with (the estimate counts it too): an example of
    the schema, or the prompt's last words.

    Models agree on most answers and each goes its own way on about one prompt in
    ``DISSENT`` (which ones depends on the model), so comparing models, or judging them,
    on simulate gives agreement rates and wins that mean something."""
    own = zlib.crc32(f"{model}\x00{prompt}".encode())
    dissents = own % DISSENT == 0
    revised = _revised(prompt, keep=dissents)
    if revised is not None:
        return revised
    if schema is not None:
        pick = own if dissents else zlib.crc32(prompt.encode())
        return orjson.dumps(example_instance(schema, pick=pick)).decode()
    summary = " ".join(prompt.split()[-_SUMMARY_WORDS:])
    return f"[simulated {model}] {summary}" if dissents else f"[simulated] {summary}"


def _revised(prompt: str, *, keep: bool) -> str | None:
    """A revision on the built-in revise prompt: the first other model's answer, or with
    ``keep`` the model's own first answer; None for any other prompt."""
    if not prompt.startswith(REVISE_OPENING):
        return None
    own_at = prompt.find(YOUR_ANSWER)
    theirs_at = prompt.find(THEIR_ANSWERS, own_at)
    if own_at < 0 or theirs_at < 0:
        return None
    own = prompt[own_at + len(YOUR_ANSWER) : theirs_at]
    head, _, first = prompt[theirs_at + len(THEIR_ANSWERS) :].partition("\n")
    if keep or not (head.startswith("--- ") and head.endswith(" ---")):
        return own
    return first.split("\n\n--- ", 1)[0]
