"""The dispatcher: reads items, prices each one, reserves its worst case, hands it to a worker.

It is the only task that reserves money for new items (workers only settle, and
reserve again for a paid retry), so the order in which money is committed is the
order of the input. It reads the (blocking) reader in chunks in a worker thread,
stops at the first cap it meets (``max_items``, ``max_cost``, the time limit)
and leaves the rest resumable. An item the response cache answers ends here,
before any money or rate is reserved for it. The stream to the workers is small, so only
items a worker is about to take hold a reservation.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from engine._budget import Funds, to_units_up
from engine._control import Control
from engine._events import ItemsCounted
from engine._items import InvalidItem, Item
from engine._plan import Plan, Work
from engine._results import ErrorInfo, ItemResult
from engine._template import render_item
from engine._tokens import estimate_tokens, input_token_bound, request_framing

READ_CHUNK = 512
"""Items read per hop to the reader thread: big enough to amortise the hop (~50 us)."""


class Dispatcher:
    def __init__(self, plan: Plan, funds: Funds, control: Control) -> None:
        self._plan = plan
        self._config = plan.config
        self._funds = funds
        self._control = control
        self._item_cap_units = (
            None if plan.config.max_item_cost is None else to_units_up(plan.config.max_item_cost)
        )
        config = plan.config
        self._framing = request_framing(
            config.output_schema, config.params, config.reasoning_effort
        )
        self._scope: anyio.CancelScope | None = None
        self.dispatched = 0
        self.seen_total: int | None = None
        """(item, model) pairs in the input, once all were read."""

    def cancel(self) -> None:
        """Stop sending (the user stopped, or the run failed)."""
        if self._scope is not None:
            self._scope.cancel()

    async def run(
        self,
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        async with work_send, result_send:
            with anyio.CancelScope() as self._scope:
                if self._control.stop_reason is not None:
                    return
                self._scope.deadline = self._control.start_clock(self._config.time_limit)
                await self._dispatch_all(work_send, result_send)
            if self._scope.cancelled_caught and self._control.stop_reason is None:
                self._control.time_up()

    async def _dispatch_all(
        self,
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        plan, config, control = self._plan, self._config, self._control
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
                        await send(result_send, plan.invalid(entry, model))
                        continue
                    if config.max_items is not None and self.dispatched >= config.max_items:
                        control.cap("max_items", f"--max-items {config.max_items} reached")
                        return
                    await control.wait_unpaused()
                    work_or_result = self._prepare(entry, model)
                    if isinstance(work_or_result, ItemResult):
                        await send(result_send, work_or_result)
                        continue
                    work = work_or_result
                    if plan.cache is not None and (answered := self._from_cache(work)):
                        await send(result_send, answered)
                        continue
                    if not await self._reserve(work):
                        return
                    try:
                        await send(work_send, work)
                    except BaseException:
                        self._funds.settle(work.reserved_units, 0.0, sent=False)
                        raise
                    self.dispatched += 1
        if plan.retrying is None:  # a retry sees only its own pairs
            self.seen_total = seen
            control.emit(ItemsCounted(total=seen, invalid=invalid))

    def _prepare(self, item: Item, model: str) -> Work | ItemResult:
        plan, config = self._plan, self._config
        try:
            prompt = render_item(
                plan.template, item.fields, edited=plan.prompt_override is not None
            )
        except ValueError as exc:
            return plan.result(item, model, "failed", error=ErrorInfo("invalid_input", str(exc)))
        bound = input_token_bound(config.system, prompt) + self._framing
        max_tokens = plan.max_tokens or config.max_tokens
        answers = plan.answers
        price = plan.prices[model]
        units = 0
        if price is not None:
            units = to_units_up(price.worst_case(bound, max_tokens * answers))
            if self._item_cap_units is not None and units > self._item_cap_units:
                assert config.max_item_cost is not None
                max_tokens = min(
                    max_tokens, price.output_tokens_within(config.max_item_cost, bound) // answers
                )
                units = to_units_up(price.worst_case(bound, max_tokens * answers))
                if max_tokens < 1 or units > self._item_cap_units:
                    worst = price.worst_case(bound, 1)
                    message = (
                        f"its prompt alone may cost ${worst:.6f}, over --max-item-cost "
                        f"${config.max_item_cost:g}"
                    )
                    error = ErrorInfo("budget", message)
                    return plan.result(item, model, "skipped", error=error)
        estimate = estimate_tokens(prompt) + estimate_tokens(config.system or "")
        return Work(item, model, prompt, max_tokens, bound, estimate, units, answers)

    def _from_cache(self, work: Work) -> ItemResult | None:
        """The result the response cache gives ``work`` (under ``--cache-only``, a skip when it
        has none), or None to send it. Looked up before the reservation and the rate limiter,
        so a cached answer holds neither."""
        plan = self._plan
        cache = plan.cache
        assert cache is not None
        started = time.perf_counter()
        work.cache_key = key = cache.key(work.model, plan.request(work, work.max_tokens))
        answer = cache.lookup(key)
        if answer is not None:
            price = plan.prices[work.model]
            return plan.result(
                work.item, work.model, "ok", output=answer.text, parsed=answer.parsed,
                finish_reason=answer.finish_reason, started=started, cached=True,
                saved=0.0 if price is None else price.cost(answer.usage),
            )  # fmt: skip
        if cache.only:
            error = ErrorInfo("not_cached", "--cache-only: the response cache has no answer to it")
            return plan.result(work.item, work.model, "skipped", error=error)
        return None

    async def _reserve(self, work: Work) -> bool:
        """Hold the worst case of ``work``; False when the run's cap can never fit it."""
        if await self._funds.hold(work.reserved_units):
            return True
        cap = self._config.max_cost
        message = f"--max-cost ${cap:g} reached: the next item could pass it"
        unsettled = self._plan.state.unsettled_usd
        if unsettled:
            message += (
                f" (${unsettled:.6f} of what the log counts as spent is for calls that were in "
                "flight when the run was killed: they may not have been billed)"
            )
        self._control.cap("max_cost", message)
        return False


async def send(stream: MemoryObjectSendStream[Any], value: Any) -> None:
    """Send without a trip through the event loop when the buffer has room.

    anyio's ``send`` always yields first; at zero latency that trip costs more
    than the item itself. Cancellation is still delivered where the stream is full.
    """
    try:
        stream.send_nowait(value)
    except anyio.WouldBlock:
        await stream.send(value)


async def _chunks(items: Iterator[Item | InvalidItem]) -> AsyncIterator[list[Item | InvalidItem]]:
    """Pull items from the (blocking) reader in chunks, in a worker thread."""
    while True:
        chunk = await anyio.to_thread.run_sync(lambda: list(islice(items, READ_CHUNK)))
        if not chunk:
            return
        yield chunk
