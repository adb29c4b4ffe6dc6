"""One item's attempts, as a worker runs them: call, settle the money, validate, retry.

A worker owns an item from the moment it takes it until its result: it waits at
the pause gate, takes a rate-limit ticket, calls the provider under a deadline,
replaces the dispatcher's reservation by the real cost as soon as an attempt is
paid, and retries with backoff. A paid attempt gave its reservation back, so a
retry reserves again, at once and within what the item may still cost: waiting
for budget here could wait for money only workers can free.
"""

from __future__ import annotations

import random
import time
from typing import Any

import anyio

from engine._budget import Funds, to_units_up
from engine._config import RetrySettings
from engine._control import Control
from engine._errors import FATAL_KINDS, ProviderError
from engine._events import ItemRetrying, ItemStarted
from engine._plan import Plan, Work
from engine._prices import Price
from engine._ratelimit import RateLimiter
from engine._results import ErrorInfo, ItemResult, Usage
from engine._retry import backoff_delay, server_wait
from engine.providers._base import CallRequest, CallResult, Provider

CALL_GRACE_S = 5.0
"""Extra time a provider gets past its own timeout before the engine gives up on a call."""


class Attempts:
    def __init__(self, plan: Plan, funds: Funds, control: Control) -> None:
        self._plan = plan
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
        price = plan.prices[work.model]
        limiter = plan.limiters.get(work.model)
        _, _, bare_model = work.model.partition(":")
        reserved = work.reserved_units
        usage = Usage()
        cost = 0.0
        errors: list[ErrorInfo] = []
        max_tokens = work.max_tokens
        started = 0.0
        attempt = 0
        try:
            await control.wait_unpaused()
            if control.halted:  # stopped before this one started: leave it unsent
                return None
            started = time.perf_counter()
            while True:
                attempt += 1
                control.emit(ItemStarted(work.item.id, work.model, attempt))
                request = CallRequest(
                    model=bare_model,
                    prompt=work.prompt,
                    system=config.system,
                    max_tokens=max_tokens,
                    temperature=config.temperature,
                    stop=config.stop,
                    schema=config.output_schema,
                    params=config.params,
                    timeout_s=config.timeout,
                    attempt=attempt,
                )
                outcome = await _call(
                    provider, limiter, request, work.input_estimate, control, config.retry
                )
                if outcome is None:  # stopped, or out of time, while waiting for the limiter
                    return None
                if outcome.usage is not None:  # a refusal is billed as an answer is
                    usage = usage + outcome.usage
                    attempt_cost = price.cost(outcome.usage) if price is not None else 0.0
                    cost += attempt_cost
                    self._funds.settle(reserved, attempt_cost)
                    reserved = 0
                if isinstance(outcome, CallResult):
                    parsed, error = self._validate(outcome)
                    if error is None:
                        self._succeeded.add(work.model)
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
                    return plan.result(
                        work.item, work.model, "failed", error=error, usage=usage, cost=cost,
                        started=started, attempts=attempt, errors=errors[:-1],
                    )  # fmt: skip
                delay = backoff_delay(
                    attempt, settings=config.retry, retry_after=retry_after, rng=self._rng
                )
                control.emit(ItemRetrying(work.item.id, work.model, attempt, error, delay))
                with control.waiting() as wait:
                    await anyio.sleep(delay)
                if wait.cancelled_caught:  # stopped, or out of time: the item stays unsent
                    return None
                if reserved == 0 and price is not None:
                    # A paid attempt gave its reservation back. The next one reserves again
                    # without waiting (the budget it would wait for may be held by items only
                    # a worker can run) and within what the item may still cost.
                    max_tokens = self._tokens_left(price, work, cost)
                    units = to_units_up(price.worst_case(work.input_bound, max(max_tokens, 1)))
                    if max_tokens < 1 or not self._funds.try_reserve(units):
                        return plan.result(
                            work.item, work.model, "skipped",
                            error=ErrorInfo("budget", "no budget left for another attempt"),
                            usage=usage, cost=cost, started=started, attempts=attempt,
                            errors=errors,
                        )  # fmt: skip
                    reserved = units
        finally:
            if reserved:
                self._funds.settle(reserved, 0.0)

    def _tokens_left(self, price: Price, work: Work, spent: float) -> int:
        """Output tokens the next attempt may use, within what the item may still cost."""
        cap = self._config.max_item_cost
        if cap is None:
            return work.max_tokens
        return min(work.max_tokens, price.output_tokens_within(cap - spent, work.input_bound))

    def _validate(self, outcome: CallResult) -> tuple[Any, ErrorInfo | None]:
        validator = self._plan.validator
        if validator is None:
            return outcome.parsed, None
        try:
            return validator.parse(outcome.text, outcome.parsed), None
        except ValueError as exc:
            return None, ErrorInfo("invalid_output", str(exc))


async def _call(
    provider: Provider,
    limiter: RateLimiter | None,
    request: CallRequest,
    input_estimate: int,
    control: Control,
    retry: RetrySettings,
) -> CallResult | ProviderError | None:
    """The call's outcome; None if a stop or the time limit came while waiting to send it.

    A server's ``retry_after`` is bounded here, before the limiter or the backoff sees it."""
    ticket = None
    if limiter is not None:
        with control.waiting() as wait:
            ticket = await limiter.acquire(input_estimate, request.max_tokens)
        if wait.cancelled_caught:
            return None
    outcome: CallResult | ProviderError
    with anyio.move_on_after(request.timeout_s + CALL_GRACE_S):
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
    outcome = ProviderError("timeout", f"no answer within {request.timeout_s:g}s")
    if limiter is not None and ticket is not None:
        limiter.record(ticket, outcome)
    return outcome
