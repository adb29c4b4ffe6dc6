"""One execution of a run: dispatcher, long-lived workers and the group-commit log task.

    input reader ──> dispatcher ──(stream, no buffer)──> N workers ──> log task ──> subscribers
                     pause gate                          rate limit      one write()
                     caps, reservation                   call, retries   + fsync per group

Workers are long-lived tasks pulling from one stream (starting a task per item
costs more than the item does at zero latency). The dispatcher alone reserves
money; workers settle it; both run on one event loop, so the budget needs no
lock. The stream to the workers has no buffer, so only items a worker has taken
hold a reservation. Results go to a single log task that commits whatever has
arrived as one group, and only then publishes ``ItemFinished``: what anyone saw
finish is on disk.

Stop cancels the dispatcher only (in-flight calls finish and are logged); abort
cancels the workers too (their items have no terminal record and run again on
resume). The log task is never cancelled by either, and flushes under a shield
if the whole execution is cancelled from outside.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine import log
from engine._budget import Budget, to_units_up
from engine._config import RunConfig
from engine._errors import FATAL_KINDS, ErrorKind, LogWriteError, ProviderError
from engine._events import (
    CapKind,
    CapReached,
    CostUpdated,
    Event,
    ItemFinished,
    ItemRetrying,
    ItemsCounted,
    ItemStarted,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunState,
    Subscriber,
    WorkersChanged,
)
from engine._items import InvalidItem, Item
from engine._prices import Price
from engine._ratelimit import RateLimiter
from engine._results import ErrorInfo, ItemResult, Usage
from engine._retry import backoff_delay
from engine._schema import OutputValidator
from engine._template import PromptTemplate, render_item
from engine._tokens import estimate_tokens, input_token_bound, request_framing
from engine.providers._base import CallRequest, CallResult, Provider

_WAKE: Any = object()
"""Sent down the results stream to wake an idle log task for a pause/resume record."""

READ_CHUNK = 512
"""Items read per hop to the reader thread: big enough to amortise the hop (~50 us)."""
GROUP_MAX = 1024
"""Most records committed in one write()+fsync."""
GROUP_TARGET = 200
GROUP_INTERVAL_S = 0.05
"""A group is committed once it has GROUP_TARGET records or its first record waited this long."""
RESULT_BUFFER = 4096
CALL_GRACE_S = 5.0
"""Extra time a provider gets past its own timeout before the engine gives up on a call."""


@dataclass(slots=True)
class _Work:
    item: Item
    model: str
    prompt: str
    max_tokens: int
    input_bound: int
    """Upper bound on input tokens, for the money cap."""
    input_estimate: int
    """Likely input tokens, for rate-limit reservations (which are given back after)."""
    reserved_units: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything an execution needs that was checked before it started."""

    config: RunConfig
    items: Iterator[Item | InvalidItem]
    """Items still to read (the first chunk was peeked to check the template)."""
    template: PromptTemplate
    providers: dict[str, Provider]
    prices: dict[str, Price | None]
    limiters: dict[str, RateLimiter]
    validator: OutputValidator | None
    writer: log.LogWriter
    state: log.LogState
    skip: Callable[[str, str, int], bool]
    """True for (model, id, line) that must not run this time (done, or not asked for)."""
    prompt_override: str | None = None
    """An edited prompt for a retry: ``template`` is built from it and it is kept in results."""
    total: int | None = None
    """(item, model) pairs in the input when known up front."""
    retrying: RunState | None = None
    """Set when this execution only retries some pairs: the state the run was in, which it
    keeps unless the retry leaves nothing undone."""


class Execution:
    def __init__(self, plan: Plan, subscribers: Sequence[Subscriber], workers: int) -> None:
        self._plan = plan
        self._config = plan.config
        self._subscribers = list(subscribers)
        self._budget = Budget.create(plan.config.max_cost, plan.state.cost_usd)
        self._item_cap_units = (
            None if plan.config.max_item_cost is None else to_units_up(plan.config.max_item_cost)
        )
        self._rng = random.Random(plan.config.sim.seed)
        self._framing = request_framing(plan.config.output_schema, plan.config.params)
        self._target_workers = workers
        self._live_workers = 0
        self._paused = False
        self._unpaused = anyio.Event()
        self._unpaused.set()
        self._settled = anyio.Event()
        self._succeeded: set[str] = set()
        self._stop_reason: RunState | None = None
        self._halted = False
        """Stopped by the user or a failure: items taken but not started stay unsent."""
        self._failure: str | None = None
        self._dispatch_scope: anyio.CancelScope | None = None
        self._work_scope: anyio.CancelScope | None = None
        self._workers_tg: TaskGroup | None = None
        self._work_recv: MemoryObjectReceiveStream[_Work] | None = None
        self._result_send: MemoryObjectSendStream[ItemResult] | None = None
        self._lifecycle_records: list[dict[str, Any]] = []
        self._counts = {
            "ok": plan.state.ok,
            "failed": plan.state.failed,
            "skipped": plan.state.skipped,
        }
        self._usage = Usage(plan.state.input_tokens, plan.state.output_tokens)
        self._seen_total: int | None = None
        self._dispatched = 0
        self._started = time.monotonic()

    # ---- control (sync: safe to call from any task on the loop) ----

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._unpaused = anyio.Event()
            self._lifecycle(log.pause_record())
            self.emit(RunPaused())

    def resume(self) -> None:
        if self._paused and not self._halted:
            self._paused = False
            self._unpaused.set()
            self._lifecycle(log.resume_record())
            self.emit(RunResumed())

    def _lifecycle(self, record: dict[str, Any]) -> None:
        """Queue a pause/resume record for the log task, in order with the results."""
        self._lifecycle_records.append(record)
        if self._result_send is not None:
            with suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                self._result_send.send_nowait(_WAKE)  # an idle log task wakes to write it

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self) -> None:
        """Send nothing more; let calls in flight finish and be logged."""
        self._halted = True
        self._stop_reason = self._stop_reason or "stopped"
        if self._dispatch_scope is not None:
            self._dispatch_scope.cancel()
        self._unpaused.set()  # items a worker holds but has not started stay unsent

    def abort(self) -> None:
        """Cancel calls in flight too; they have no terminal record and run again on resume."""
        self.stop()
        if self._work_scope is not None:
            self._work_scope.cancel()

    def set_workers(self, count: int) -> None:
        self._target_workers = max(1, count)
        self._spawn_workers()
        self.emit(WorkersChanged(self._target_workers))
        budget = self._budget
        self.emit(CostUpdated(budget.spent_usd, budget.reserved_usd, budget.cap_usd))

    # ---- the run ----

    async def run(self) -> RunFinished:
        if self._plan.total is not None:
            self.emit(ItemsCounted(total=self._plan.total, invalid=0))
        self.emit(WorkersChanged(self._target_workers))
        # A small buffer lets a worker take its next item without waiting for the dispatcher
        # to be scheduled; what sits there holds a reservation, as if it were in flight.
        work_send, work_recv = anyio.create_memory_object_stream[_Work](self._target_workers)
        result_send, result_recv = anyio.create_memory_object_stream[ItemResult](RESULT_BUFFER)
        self._work_recv, self._result_send = work_recv, result_send
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._log_loop, result_recv)
            async with result_send, work_recv:
                with anyio.CancelScope() as self._work_scope:
                    async with anyio.create_task_group() as workers_tg:
                        self._workers_tg = workers_tg
                        self._spawn_workers()
                        await self._dispatch(work_send, result_send.clone())
                self._workers_tg = None  # too late for more workers: set_workers only records
        return await self._finish()

    def _spawn_workers(self) -> None:
        tg, recv, send = self._workers_tg, self._work_recv, self._result_send
        if tg is None or recv is None or send is None:
            return
        while self._live_workers < self._target_workers:
            self._live_workers += 1
            tg.start_soon(self._worker, recv.clone(), send.clone())

    async def _dispatch(
        self,
        work_send: MemoryObjectSendStream[_Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        async with work_send, result_send:
            with anyio.CancelScope() as self._dispatch_scope:
                if self._stop_reason is not None:
                    return
                deadline = math.inf
                if self._config.time_limit is not None:
                    deadline = anyio.current_time() + self._config.time_limit
                self._dispatch_scope.deadline = deadline
                await self._dispatch_all(work_send, result_send)
            if self._dispatch_scope.cancelled_caught and self._stop_reason is None:
                self._cap("time_limit", f"time limit of {self._config.time_limit:g}s reached")

    async def _dispatch_all(
        self,
        work_send: MemoryObjectSendStream[_Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        plan, config = self._plan, self._config
        seen = 0
        invalid = 0
        async for chunk in _chunks(plan.items):
            for entry in chunk:
                for model in config.models:
                    seen += 1
                    if plan.skip(model, entry.id, entry.line):
                        continue
                    if isinstance(entry, InvalidItem):
                        invalid += 1
                        await _send(result_send, self._invalid(entry, model))
                        continue
                    if config.max_items is not None and self._dispatched >= config.max_items:
                        self._cap("max_items", f"--max-items {config.max_items} reached")
                        return
                    if self._paused:
                        await self._unpaused.wait()
                    work_or_result = self._prepare(entry, model)
                    if isinstance(work_or_result, ItemResult):
                        await _send(result_send, work_or_result)
                        continue
                    work = work_or_result
                    if not await self._reserve(work):
                        return
                    try:
                        await _send(work_send, work)
                    except BaseException:
                        self._budget.settle(work.reserved_units, 0.0)
                        raise
                    self._dispatched += 1
        if self._plan.retrying is None:  # a retry sees only its own pairs
            self._seen_total = seen
            self.emit(ItemsCounted(total=seen, invalid=invalid))

    def _prepare(self, item: Item, model: str) -> _Work | ItemResult:
        plan, config = self._plan, self._config
        fields = item.fields
        if plan.prompt_override is not None:  # the edited prompt wins over the item's own
            fields = {name: value for name, value in fields.items() if name != "prompt"}
        try:
            prompt = render_item(plan.template, fields)
        except ValueError as exc:
            return self._result(item, model, "failed", error=ErrorInfo("invalid_input", str(exc)))
        bound = input_token_bound(config.system, prompt) + self._framing
        max_tokens = config.max_tokens
        price = plan.prices[model]
        units = 0
        if price is not None:
            units = to_units_up(price.worst_case(bound, max_tokens))
            if self._item_cap_units is not None and units > self._item_cap_units:
                assert config.max_item_cost is not None
                max_tokens = min(
                    max_tokens, price.output_tokens_within(config.max_item_cost, bound)
                )
                units = to_units_up(price.worst_case(bound, max_tokens))
                if max_tokens < 1 or units > self._item_cap_units:
                    worst = price.worst_case(bound, 1)
                    message = (
                        f"its prompt alone may cost ${worst:.6f}, over --max-item-cost "
                        f"${config.max_item_cost:g}"
                    )
                    return self._result(item, model, "skipped", error=ErrorInfo("budget", message))
        estimate = estimate_tokens(prompt) + estimate_tokens(config.system or "")
        return _Work(item, model, prompt, max_tokens, bound, estimate, units)

    async def _reserve(self, work: _Work) -> bool:
        """Hold the worst case of ``work``; False when the run's cap can never fit it."""
        if await self._hold(work.reserved_units):
            return True
        cap = self._config.max_cost
        self._cap("max_cost", f"--max-cost ${cap:g} reached: the next item could pass it")
        return False

    async def _hold(self, units: int) -> bool:
        """Reserve ``units``, waiting for calls in flight to settle; False if it can never fit."""
        budget = self._budget
        while budget.fits_ever(units):
            if budget.try_reserve(units):
                return True
            if self._settled.is_set():
                self._settled = anyio.Event()
            await self._settled.wait()
        return False

    def _cap(self, cap: CapKind, message: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = "capped"
            self.emit(CapReached(cap, message))

    # ---- workers ----

    async def _worker(
        self,
        work_recv: MemoryObjectReceiveStream[_Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        try:
            async with work_recv, result_send:
                while True:
                    try:
                        work = work_recv.receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            work = await work_recv.receive()
                        except anyio.EndOfStream:
                            return
                    except anyio.EndOfStream:
                        return
                    result = await self._run_item(work)
                    if result is not None:
                        await _send(result_send, result)
                    if self._live_workers > self._target_workers:
                        return
        finally:
            self._live_workers -= 1

    async def _run_item(self, work: _Work) -> ItemResult | None:
        plan, config = self._plan, self._config
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
            if self._paused:
                await self._unpaused.wait()
            if self._halted:  # stopped before this one started: leave it unsent
                return None
            started = time.perf_counter()
            while True:
                attempt += 1
                self.emit(ItemStarted(work.item.id, work.model, attempt))
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
                outcome = await self._call(provider, limiter, request, work.input_estimate)
                if outcome.usage is not None:  # a refusal is billed as an answer is
                    usage = usage + outcome.usage
                    attempt_cost = price.cost(outcome.usage) if price is not None else 0.0
                    cost += attempt_cost
                    self._budget.settle(reserved, attempt_cost)
                    reserved = 0
                    self._wake_dispatcher()
                if isinstance(outcome, CallResult):
                    parsed, error = self._validate(outcome)
                    if error is None:
                        self._succeeded.add(work.model)
                        return self._result(
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
                        self._fail_run(f"{work.model}: {outcome.message}")
                        return None
                errors.append(error)
                retryable = isinstance(outcome, CallResult) or outcome.retryable
                if not retryable or attempt > config.retry.retries:
                    return self._result(
                        work.item, work.model, "failed", error=error, usage=usage, cost=cost,
                        started=started, attempts=attempt, errors=errors[:-1],
                    )  # fmt: skip
                delay = backoff_delay(
                    attempt, settings=config.retry, retry_after=retry_after, rng=self._rng
                )
                self.emit(ItemRetrying(work.item.id, work.model, attempt, error, delay))
                await anyio.sleep(delay)
                if reserved == 0 and price is not None:
                    # A paid attempt gave its reservation back. The next one reserves again
                    # without waiting (the budget it would wait for may be held by items only
                    # a worker can run) and within what the item may still cost.
                    max_tokens = self._tokens_left(price, work, cost)
                    units = to_units_up(price.worst_case(work.input_bound, max(max_tokens, 1)))
                    if max_tokens < 1 or not self._budget.try_reserve(units):
                        return self._result(
                            work.item, work.model, "skipped",
                            error=ErrorInfo("budget", "no budget left for another attempt"),
                            usage=usage, cost=cost, started=started, attempts=attempt,
                            errors=errors,
                        )  # fmt: skip
                    reserved = units
        finally:
            if reserved:
                self._budget.settle(reserved, 0.0)
                self._wake_dispatcher()

    def _tokens_left(self, price: Price, work: _Work, spent: float) -> int:
        """Output tokens the next attempt may use, within what the item may still cost."""
        cap = self._config.max_item_cost
        if cap is None:
            return work.max_tokens
        return min(work.max_tokens, price.output_tokens_within(cap - spent, work.input_bound))

    async def _call(
        self,
        provider: Provider,
        limiter: RateLimiter | None,
        request: CallRequest,
        input_estimate: int,
    ) -> CallResult | ProviderError:
        ticket = None
        if limiter is not None:
            ticket = await limiter.acquire(input_estimate, request.max_tokens)
        outcome: CallResult | ProviderError
        with anyio.move_on_after(request.timeout_s + CALL_GRACE_S):
            try:
                outcome = await provider.call(request)
            except ProviderError as exc:
                outcome = exc
            except Exception as exc:  # a provider bug must cost one item, not the run
                outcome = ProviderError("internal", f"{type(exc).__name__}: {exc}")
            if limiter is not None and ticket is not None:
                limiter.record(ticket, outcome)
            return outcome
        outcome = ProviderError("timeout", f"no answer within {request.timeout_s:g}s")
        if limiter is not None and ticket is not None:
            limiter.record(ticket, outcome)
        return outcome

    def _validate(self, outcome: CallResult) -> tuple[Any, ErrorInfo | None]:
        validator = self._plan.validator
        if validator is None:
            return outcome.parsed, None
        try:
            return validator.parse(outcome.text, outcome.parsed), None
        except ValueError as exc:
            return None, ErrorInfo("invalid_output", str(exc))

    def _wake_dispatcher(self) -> None:
        self._settled.set()

    def _fail_run(self, message: str) -> None:
        if self._failure is None:
            self._failure = message
            self._stop_reason = "failed"
            self.emit(RunFailed(message))
            self.abort()

    # ---- results ----

    def _result(
        self,
        item: Item,
        model: str,
        status: Any,
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
    ) -> ItemResult:
        latency = 0.0 if started is None else (time.perf_counter() - started) * 1000
        return ItemResult(
            id=item.id,
            model=model,
            status=status,
            line=item.line,
            fields=item.fields,
            output=output,
            parsed=parsed,
            usage=usage or Usage(),
            cost_usd=cost,
            latency_ms=latency,
            attempts=attempts,
            error=error,
            attempt_errors=tuple(errors),
            finish_reason=finish_reason,
            simulated=simulated or model.startswith("simulate:"),
            prompt_override=self._plan.prompt_override,
        )

    def _invalid(self, entry: InvalidItem, model: str) -> ItemResult:
        item = Item(entry.id, entry.line, {})
        kind: ErrorKind = "invalid_input"
        return self._result(
            item, model, "failed", error=ErrorInfo(kind, f"line {entry.line}: {entry.reason}")
        )

    async def _log_loop(self, results: MemoryObjectReceiveStream[ItemResult]) -> None:
        async with results:
            while True:
                try:
                    group = [await results.receive()]
                except anyio.EndOfStream:
                    return
                try:
                    await _fill(group, results)
                finally:  # cancelled while filling: what arrived is still committed
                    with anyio.CancelScope(shield=True):
                        await self._commit(group)

    async def _commit(self, group: list[ItemResult]) -> None:
        """One write (and fsync) for the group, then its events: seen means on disk.

        After a failed write nothing more is written (the run is stopping): those
        results are dropped and their items run again on resume."""
        if self._plan.writer.broken:
            return
        group = [result for result in group if result is not _WAKE]
        lines = [log.encode(log.result_record(r)) for r in group]
        lines += [log.encode(record) for record in self._lifecycle_records]
        self._lifecycle_records.clear()
        try:
            await anyio.to_thread.run_sync(self._plan.writer.write_group, lines)
        except LogWriteError as exc:
            self._fail_run(str(exc))
            return
        for result in group:
            self._count(result)
            self.emit(ItemFinished(result))
        budget = self._budget
        self.emit(CostUpdated(budget.spent_usd, budget.reserved_usd, budget.cap_usd))

    def _count(self, result: ItemResult) -> None:
        previous = self._plan.state.status(result.model, result.id, result.line)
        if previous is not None:
            self._counts[previous] -= 1
        self._counts[result.status] += 1
        self._usage = self._usage + result.usage

    async def _finish(self) -> RunFinished:
        state: RunState = self._stop_reason or "finished"
        total = self._seen_total if self._seen_total is not None else self._plan.total
        done = sum(self._counts.values())
        remaining = 0 if total is None else max(0, total - done)
        if state == "stopped" and remaining == 0 and self._seen_total is not None:
            state = "finished"
        retrying = self._plan.retrying
        if state == "finished" and retrying is not None and (total is None or remaining):
            state = retrying
        lines = [log.encode(r) for r in self._lifecycle_records]
        lines.append(log.encode(log.finish_record(state, spent_usd=self._budget.spent_usd)))
        self._lifecycle_records.clear()
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(self._plan.writer.write_now, b"".join(lines))
            except LogWriteError as exc:
                if self._failure is None:
                    self._failure = str(exc)
                    self.emit(RunFailed(str(exc)))
                state = "failed"
        finished = RunFinished(
            state=state,
            ok=self._counts["ok"],
            failed=self._counts["failed"],
            skipped=self._counts["skipped"],
            remaining=remaining,
            cost_usd=self._budget.spent_usd,
            input_tokens=self._usage.input_tokens,
            output_tokens=self._usage.output_tokens,
            elapsed_s=time.monotonic() - self._started,
        )
        self.emit(finished)
        return finished

    @property
    def failure(self) -> str | None:
        return self._failure


async def _send(stream: MemoryObjectSendStream[Any], value: Any) -> None:
    """Send without a trip through the event loop when the buffer has room.

    anyio's ``send`` always yields first; at zero latency that trip costs more
    than the item itself. Cancellation is still delivered where the stream is full.
    """
    try:
        stream.send_nowait(value)
    except anyio.WouldBlock:
        await stream.send(value)


async def _fill(group: list[ItemResult], results: MemoryObjectReceiveStream[ItemResult]) -> None:
    """Add to ``group`` what arrives within the group interval, up to GROUP_MAX records."""
    deadline = anyio.current_time() + GROUP_INTERVAL_S
    while len(group) < GROUP_MAX:
        try:
            group.append(results.receive_nowait())
            continue
        except anyio.EndOfStream:
            return
        except anyio.WouldBlock:
            pass
        if len(group) >= GROUP_TARGET:
            return
        with anyio.move_on_after(deadline - anyio.current_time()) as waited:
            try:
                group.append(await results.receive())
            except anyio.EndOfStream:
                return
        if waited.cancelled_caught:
            return


async def _chunks(items: Iterator[Item | InvalidItem]) -> Any:
    """Pull items from the (blocking) reader in chunks, in a worker thread."""
    while True:
        chunk = await anyio.to_thread.run_sync(lambda: list(islice(items, READ_CHUNK)))
        if not chunk:
            return
        yield chunk
