"""What an execution is given, and the unit of work its parts pass along.

``Plan`` is everything ``Run`` checked before the first call; ``Work`` is one
(item, model) pair the dispatcher priced and reserved money for, on its way to a
worker. Both are plain data, so the dispatcher, the workers and the log task can
share them without reaching into each other. Results are built here too, because
every part makes them (the dispatcher for items that never get a call, workers
for the rest) and each one must carry the plan's edited prompt; and so is the
request an attempt sends (``Plan.request``), because the dispatcher needs it
before a worker does: its response-cache key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import log
from engine._cache import RunCache
from engine._config import RunConfig
from engine._events import FinalState
from engine._item_cap import ItemCap
from engine._items import InvalidItem, Item
from engine._lanes import Lane
from engine._prices import FREE, Price
from engine._ratelimit import RateLimiter
from engine._results import ErrorInfo, ItemResult, Status, Usage
from engine._stepper import Stepper
from engine._template import PromptTemplate
from engine.providers import BatchApi
from engine.providers._base import CallRequest, Provider


@dataclass(slots=True)
class Work:
    item: Item
    model: str
    prompt: str
    max_tokens: int
    input_bound: int
    """Upper bound on input tokens, for the money cap."""
    input_estimate: int
    """Likely input tokens, for rate-limit reservations (which are given back after)."""
    reserved_units: int
    answers: int
    """Answers a call may be billed for (``--param n``): the output reserved is multiplied."""
    price: Price | None
    """What its tokens cost: the model's, at the batch price when it goes batch (the online
    price for an item a batch job gave back to finish online)."""
    cache_key: bytes | None = None
    """The response-cache key of its first attempt's request (None: not cached)."""
    request: CallRequest | None = None
    """Its first attempt's request, once built (``Plan.request``)."""


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What the batch lane needs: each batch model's API, and the jobs already submitted."""

    apis: Mapping[str, BatchApi]
    """Lane -> its provider's batch API, for the lanes that go batch and those of
    ``open_jobs`` (a lane is a model, or one model of a pipeline's step)."""
    lanes: frozenset[str]
    """The lanes whose work goes batch in this execution."""
    online_prices: Mapping[str, Price | None]
    """What each lane's tokens would cost online (the summary's saving), by lane."""
    open_jobs: tuple[log.BatchRecord, ...]
    """Jobs submitted by earlier executions with results still to fetch (re-attached)."""
    carried_units: int
    """What those jobs' requests without a result reserved: held again from the start."""
    waiting: set[tuple[str, str]]
    """(model, id) of the requests of open jobs without a result: not dispatched. A job
    that ends leaves out those it did not finish, so they go out again."""
    job_ids: set[str]
    """Every job id the run has had, added to as jobs are created: never taken for another
    job when one is looked for by its token."""
    run_id: str
    next_job: int
    """The number the next job's token gets (one more than the intents in the log)."""
    detach: bool = False
    """Return once every chunk is submitted (and each open job looked at once)."""
    arriving: set[tuple[str, str]] = field(default_factory=set)
    """A pipeline's (lane, id) of requests whose job ended and whose result (or word that
    there is none) has not reached ``Dispatcher.feed`` yet: more work for the next steps'
    chunks is on its way, so they wait for it."""


def call_request(
    config: RunConfig,
    lane: Lane,
    prompt: str,
    max_tokens: int,
    attempt: int = 1,
    fixed_prefix: str | None = None,
) -> CallRequest:
    """What a call of ``prompt`` on ``lane`` sends under ``config`` (the lane's timeout and
    the attempt are not sent: they do not change the response-cache key).

    ``fixed_prefix`` (the template's text before its first placeholder) marks the system
    prompt and that start of the prompt for the provider's prompt cache, unless
    ``--prompt-cache off``. Built in one go: this runs for every attempt of every item."""
    marked = fixed_prefix is not None and config.prompt_cache != "off"
    prefix = len(fixed_prefix) if fixed_prefix and marked and prompt.startswith(fixed_prefix) else 0
    return CallRequest(
        model=lane.sent_model,
        prompt=prompt,
        system=lane.system,
        max_tokens=max_tokens,
        temperature=lane.temperature,
        stop=config.stop,
        schema=lane.schema,
        params=lane.params,
        reasoning_effort=config.reasoning_effort,
        timeout_s=lane.timeout_s,
        attempt=attempt,
        prompt_cache=marked,
        cache_prefix=prefix,
    )


def cut_off(max_tokens: int) -> ErrorInfo:
    """Why an answer cut off at the output limit is ``truncated``, online or in a batch job."""
    return ErrorInfo(
        "truncated",
        f"cut off at {max_tokens} output tokens (finish reason length): retry with a larger "
        "--max-tokens",
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything an execution needs that was checked before it started."""

    config: RunConfig
    items: Iterator[Item | InvalidItem]
    """Items still to read (the first chunk was peeked to check the template)."""
    template: PromptTemplate
    lanes: dict[str, Lane]
    """What each lane's calls send, by its key (the model, for a run with no steps)."""
    providers: dict[str, Provider]
    """By lane key, as are ``prices`` and ``limiters`` (a model's one limiter under each of
    its lanes' keys)."""
    prices: dict[str, Price | None]
    limiters: dict[str, RateLimiter]
    writer: log.LogWriter
    state: log.LogState
    skip: Callable[[str, str, int], bool]
    """True for (model, id, line) that must not run this time (done, or not asked for)."""
    prompt_override: str | None = None
    """An edited prompt for a retry: ``template`` is built from it and it is kept in results."""
    max_tokens: int | None = None
    """A raised output limit for a retry (of truncated answers): it replaces the config's
    for every call of this execution and is kept in results."""
    total: int | None = None
    """(item, model) pairs in the input when known up front."""
    retrying: FinalState | None = None
    """Set when this execution only retries some pairs: the state the run was in, which it
    keeps unless the retry leaves nothing undone."""
    batch: BatchPlan | None = None
    """Set when some models go through a batch API, or earlier batch jobs are open."""
    cache: RunCache | None = None
    """The response cache, unless the run keeps none."""
    stepper: Stepper | None = None
    """Set for a pipeline: takes each item through its steps."""
    item_cap: ItemCap | None = None
    """Set when ``--max-item-cost`` caps an item's several calls together."""

    def request(self, work: Work, max_tokens: int, attempt: int = 1) -> CallRequest:
        """What an attempt of ``work`` sends (``max_tokens`` may be lowered for a retry), its
        fixed start marked for the provider's prompt cache unless ``--prompt-cache off``.
        The first attempt's is built once: the cache lookup, the call (or the batch line)
        and the line's size all ask for it."""
        first = attempt == 1 and max_tokens == work.max_tokens
        if first and work.request is not None:
            return work.request
        lane = self.lanes[work.model]
        request = call_request(
            self.config, lane, work.prompt, max_tokens, attempt, lane.template.fixed_prefix
        )
        if first:
            work.request = request
        return request

    def result(
        self,
        item: Item,
        model: str,
        status: Status,
        *,
        error: ErrorInfo | None = None,
        output: str | None = None,
        parsed: Any = None,
        usage: Usage | None = None,
        cost: float = 0.0,
        started: float | None = None,
        attempts: int = 0,
        errors: Sequence[ErrorInfo] = (),
        finish_reason: str | None = None,
        simulated: bool = False,
        cached: bool = False,
        saved: float = 0.0,
    ) -> ItemResult:
        """The result of ``item`` on ``model``; ``started`` is a ``perf_counter`` reading."""
        latency = 0.0 if started is None else (time.perf_counter() - started) * 1000
        usage = usage or Usage()
        price = self.prices.get(model, FREE)
        read_or_written = usage.cached_tokens or usage.cache_write_tokens
        prompt_saved = (
            price.saved_by_cache(usage) if read_or_written and price and not usage.unknown else 0.0
        )
        return ItemResult(
            id=item.id,
            model=model,
            status=status,
            line=item.line,
            fields=item.fields,
            output=output,
            parsed=parsed,
            usage=usage,
            cost_usd=cost,
            latency_ms=latency,
            attempts=attempts,
            error=error,
            attempt_errors=tuple(errors),
            finish_reason=finish_reason,
            simulated=simulated or self.lanes[model].model.startswith("simulate:"),
            prompt_override=self.prompt_override,
            unpriced=price is None,
            cached=cached,
            saved_usd=saved,
            cache_saved_usd=prompt_saved,
            finished_at=time.time(),
            max_tokens=self.max_tokens,
        )

    def invalid(self, entry: InvalidItem, model: str) -> ItemResult:
        """The failure of an input line that could not be read as an item."""
        item = Item(entry.id, entry.line, {})
        error = ErrorInfo("invalid_input", f"line {entry.line}: {entry.reason}")
        return self.result(item, model, "failed", error=error)
