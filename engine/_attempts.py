"""One item's attempts, as a worker runs them: call, settle the money, validate, retry.

A worker owns an item from the moment it takes it until its result: it waits at
the pause gate, waits for the log to hold the reservation (``Funds.expose``),
takes a rate-limit ticket, calls the provider (which bounds its own time), replaces the
reservation by the real cost as soon as an attempt is paid, and retries with
backoff. A paid attempt gave its reservation back, so a retry reserves again
before its backoff and before any new item (``Funds.hold_retry``), within what
the item may still cost.

What an answer cost is charged as the provider reports it, with two exceptions:
an answer whose usage is unknown is charged all that was reserved for it, and a
call cancelled after it was sent (abort) is charged its reservation too, since
the provider may have billed it. An answer that cost more than was reserved
(billing past ``max_tokens``) is recorded as it is; if that takes spending to the
cap, nothing more is sent and the cap event says by how much and why.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import anyio

from engine import log
from engine._budget import Funds, cap_reached, to_units_up, to_usd
from engine._cache import Answer
from engine._config import RetrySettings
from engine._control import Control
from engine._errors import FATAL_KINDS, ProviderError
from engine._events import ItemRetrying, ItemStarted
from engine._plan import Plan, Work, cut_off
from engine._prices import Price
from engine._ratelimit import RateLimiter, Ticket
from engine._results import ErrorInfo, ItemResult, Usage
from engine._retry import backoff_delay, server_wait
from engine.providers._base import CallRequest, CallResult, Provider


class Attempts:
    def __init__(
        self,
        plan: Plan,
        funds: Funds,
        control: Control,
        log_note: Callable[[dict[str, Any]], None],
    ) -> None:
        self._plan = plan
        self._log_note = log_note
        self._config = plan.config
        self._funds = funds
        self._control = control
        self._rng = random.Random(plan.config.sim.seed)
        self._succeeded: set[str] = set()
        """Models that answered once: a fatal error of theirs fails an item, not the run."""

    async def run(self, work: Work) -> ItemResult | None:
        """The item's result, or None if it was never sent (stopped) or the run failed."""
        plan, config, control = self._plan, self._config, self._control
        provider = plan.providers[work.model]
        price = work.price
        limiter = plan.limiters.get(work.model)
        reserved = work.reserved_units
        sent = False
        usage: Usage | None = None  # what the paid attempts used, together
        cost = 0.0
        errors: list[ErrorInfo] = []
        max_tokens = work.max_tokens
        started = 0.0
        attempt = 0
        try:
            await control.wait_unpaused()
            if not control.sending():
                return None  # stopped, or out of time, before this one started: leave it unsent
            started = time.perf_counter()
            while True:
                attempt += 1
                control.emit(ItemStarted(work.item.id, work.model, attempt))
                request = plan.request(work, max_tokens, attempt)
                ticket: Ticket | None = None
                if limiter is not None:
                    with control.waiting() as wait:
                        ticket = await limiter.acquire(work.input_estimate, request.max_tokens)
                    if wait.cancelled_caught:  # stopped, or out of time, waiting for its pace
                        return None
                await self._funds.expose(reserved)
                sent = True
                self._funds.calls_in_flight += 1
                try:
                    outcome = await _call(provider, limiter, ticket, request, config.retry)
                finally:
                    self._funds.calls_in_flight -= 1
                paid = outcome.usage
                if paid is not None:  # a refusal is billed as an answer is
                    usage = paid if usage is None else usage + paid
                    attempt_cost = self._charge(work, price, paid, reserved)
                    cost += attempt_cost
                    reserved = 0
                else:  # not billed (an error): the reservation is kept for the next attempt
                    self._funds.unexpose(reserved)
                sent = False
                if isinstance(outcome, CallResult) and outcome.finish_reason == "length":
                    # Cut off at the limit: the same request would be cut off again, so
                    # it is not retried; kept, paid for, and not a success.
                    return plan.result(
                        work.item, work.model, "truncated",
                        error=cut_off(request.max_tokens), output=outcome.text,
                        usage=usage, cost=cost, started=started, attempts=attempt,
                        errors=errors, finish_reason=outcome.finish_reason,
                        simulated=outcome.simulated,
                    )  # fmt: skip
                if isinstance(outcome, CallResult):
                    parsed, error = self._validate(work, outcome)
                    if error is None:
                        self._succeeded.add(work.model)
                        self._keep(work, request, outcome, parsed, paid)
                        return plan.result(
                            work.item, work.model, "ok",
                            output=outcome.text, parsed=parsed, usage=usage, cost=cost,
                            started=started, attempts=attempt, errors=errors,
                            finish_reason=outcome.finish_reason, simulated=outcome.simulated,
                        )  # fmt: skip
                    retry_after = None
                else:
                    error = ErrorInfo(outcome.kind, outcome.message)
                    retry_after = outcome.retry_after
                    if outcome.kind in FATAL_KINDS and work.model not in self._succeeded:
                        control.fail(f"{work.model}: {outcome.message}")
                        return None
                errors.append(error)
                retryable = isinstance(outcome, CallResult) or outcome.retryable
                if not retryable or attempt > config.retry.retries:
                    said = outcome.text if isinstance(outcome, CallResult) else outcome.output
                    return plan.result(
                        work.item, work.model, "failed", error=error, output=said, usage=usage,
                        cost=cost, started=started, attempts=attempt, errors=errors[:-1],
                    )  # fmt: skip
                if paid is not None and price is not None:
                    # A paid attempt gave its reservation back: it is in the log, and the
                    # next attempt reserves again, before the backoff and any new item.
                    self._log_note(
                        log.paid_record(work.model, work.item.id, attempt, attempt_cost, paid)
                    )
                    max_tokens = self._tokens_left(price, work)
                    units = to_units_up(
                        price.worst_case(work.input_bound, max(max_tokens, 1) * work.answers)
                    )
                    item_cap = plan.item_cap
                    if (
                        max_tokens < 1
                        or (item_cap is not None and units > item_cap.room(work.item.id))
                        or not await self._funds.hold_retry(units)
                    ):
                        return plan.result(
                            work.item, work.model, "skipped",
                            error=ErrorInfo("budget", "no budget left for another attempt"),
                            usage=usage, cost=cost, started=started, attempts=attempt,
                            errors=errors,
                        )  # fmt: skip
                    reserved = units
                    if item_cap is not None:
                        item_cap.settle(work.item.id, 0, units)
                delay = backoff_delay(
                    attempt, settings=config.retry, retry_after=retry_after, rng=self._rng
                )
                control.emit(ItemRetrying(work.item.id, work.model, attempt, error, delay))
                with control.waiting() as wait:
                    await anyio.sleep(delay)
                if wait.cancelled_caught:  # stopped, or out of time: the item stays unsent
                    return None
        finally:
            charged = 0
            if reserved:  # a call cancelled once sent may have been billed: charge it all
                charged = self._funds.settle(reserved, None if sent else 0.0, sent=sent)
            if plan.item_cap is not None:
                plan.item_cap.close(work.item.id, reserved, charged)

    def _keep(
        self,
        work: Work,
        request: CallRequest,
        outcome: CallResult,
        parsed: Any,
        paid: Usage | None,
    ) -> None:
        """Store a successful answer in the response cache, under the request it answered."""
        cache = self._plan.cache
        if cache is None or work.cache_key is None:
            return
        key: bytes | None = work.cache_key
        if request.max_tokens != work.max_tokens:  # a retry lowered it: another request
            key = cache.key(work.model, request)
        answer = Answer(outcome.text, parsed, outcome.finish_reason, paid or Usage())
        cache.keep(key, answer)

    def _charge(self, work: Work, price: Price | None, paid: Usage, reserved: int) -> float:
        """Settle one paid attempt and return what it is charged (see the module docstring)."""
        item_cap = self._plan.item_cap
        if price is None:
            self._funds.settle(reserved, 0.0, sent=True)
            if item_cap is not None:
                item_cap.settle(work.item.id, reserved, 0)
            return 0.0
        actual = None if paid.unknown else price.cost(paid)
        charged = self._funds.settle(reserved, actual, sent=True)
        if item_cap is not None:
            item_cap.settle(work.item.id, reserved, charged)
        message = cap_reached(self._funds.budget, work.model, charged, reserved)
        if message is not None:
            self._control.cap("max_cost", message)
            self._control.halt()  # taken but not started: stays unsent
        return to_usd(charged) if actual is None else actual

    def _tokens_left(self, price: Price, work: Work) -> int:
        """Output tokens the next attempt may use, within what the item may still cost (what
        its other calls and attempts left, ``engine._item_cap``)."""
        item_cap = self._plan.item_cap
        if item_cap is None:
            return work.max_tokens
        left = to_usd(item_cap.room(work.item.id))
        within = price.output_tokens_within(left, work.input_bound) // work.answers
        return min(work.max_tokens, within)

    def _validate(self, work: Work, outcome: CallResult) -> tuple[Any, ErrorInfo | None]:
        validator = self._plan.lanes[work.model].validator
        if validator is None:
            return outcome.parsed, None
        try:  # scrubbed of keys by the validator, which batch results go through too
            return validator.parse(outcome.text, outcome.parsed), None
        except ValueError as exc:
            return None, ErrorInfo("invalid_output", str(exc))


async def _call(
    provider: Provider,
    limiter: RateLimiter | None,
    ticket: Ticket | None,
    request: CallRequest,
    retry: RetrySettings,
) -> CallResult | ProviderError:
    """The call's outcome (the provider bounds its time: ``Provider.call``); a server's
    ``retry_after`` is bounded here, before the limiter or the backoff sees it."""
    outcome: CallResult | ProviderError
    try:
        outcome = await provider.call(request)
    except ProviderError as exc:
        outcome = exc
        exc.retry_after = server_wait(exc.retry_after, retry)
    except Exception as exc:  # a provider bug must cost one item, not the run
        outcome = ProviderError("internal", f"{type(exc).__name__}: {exc}")
    if limiter is not None and ticket is not None:
        limiter.record(ticket, outcome)
    return outcome
