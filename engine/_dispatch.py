"""The dispatcher: reads items, prices each one, reserves its worst case, hands it to a worker.

It is the only task that reserves money for new items (workers only settle, and
reserve again for a paid retry), so the order in which money is committed is the
order of the input. It reads the (blocking) reader in chunks in a worker thread,
stops at the first cap it meets (``max_items``, ``max_cost``, the time limit)
and leaves the rest resumable. An item the response cache answers ends here,
before any money or rate is reserved for it. The stream to the workers is small, so only
items a worker is about to take hold a reservation.

A pipeline's later steps start as soon as their inputs are in: a worker that got
an item's answer asks ``answered`` what comes next and runs the item's next online
lane itself; its other lanes ready, and the lanes a batch job's results start, go
through ``feed``, which alone may wait for room in the workers' stream.

A pipeline's batch lanes go to the batch lane, from ``_begin`` (first steps) and from
``feed`` (later steps, as each item's inputs come in), where they fill the chunk of
their lane. A chunk goes out when it is full (the provider's limits, ``--batch-size``),
or once the run could not go on without it: no online lane of an item is in flight
and no item can begin now (the input is all read, or the dispatcher waits for room
or money). So a later batch step's job holds whatever items became ready while
anything online could still add to it: with a quick online step before it, that is
about all the items read so far; with ``--batch-size N``, jobs of N go out as soon
as N items are ready. Waiting for a fuller chunk costs nothing a batch job does not
already cost (results come in hours, not seconds), and fewer, larger jobs are what
the providers' limits and ``--max-parallel-batches`` count.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import nullcontext, suppress
from itertools import islice
from typing import Any, Final, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine._budget import Funds, to_units_up, to_usd, usd
from engine._control import Control
from engine._events import ItemsCounted
from engine._item_cap import fit, too_dear
from engine._items import InvalidItem, Item
from engine._plan import Plan, Work
from engine._prices import Price
from engine._results import ErrorInfo, ItemResult
from engine._stepper import Next, Stepper, Unanswered
from engine._template import render_item
from engine._tokens import estimate_tokens, input_token_bound

READ_CHUNK = 512
"""Items read per hop to the reader thread: big enough to amortise the hop (~50 us)."""
IN_PROGRESS_PER_WORKER = 256
"""A pipeline's items with an online lane in flight, per worker, before the next item
waits: later steps go first, so what the items in progress hold stays bounded."""
LOOK: Final = "look"
"""Told to ``feed`` when a worker's item ended with nothing online left in flight."""
ToFeed = ItemResult | Unanswered | Work | Literal["look"] | None
"""What ``feed`` is told (see there)."""
IN_PROGRESS_MOST = 100_000
"""A pipeline's items begun and not ended, those waiting in batch jobs included, before the
next item waits: each holds its fields and answers so far in memory."""


class Dispatcher:
    def __init__(
        self,
        plan: Plan,
        funds: Funds,
        control: Control,
        tell_feed: Callable[[ToFeed], None] = lambda message: None,
    ) -> None:
        self._plan = plan
        self._tell_feed = tell_feed
        self._config = plan.config
        self._funds = funds
        self._control = control
        self._scope: anyio.CancelScope | None = None
        self._feed_scope: anyio.CancelScope | None = None
        self._room = anyio.Event()
        """Set when a pipeline's item ends: the dispatcher may begin another."""
        self._lane: MemoryObjectSendStream[Work | None] | None = None
        """The batch lane, while it takes work: told when an item must wait for money."""
        self._chunked = False
        """A pipeline's batch work went to the lane since its chunks were last sent out."""
        self._blocked = False
        """A pipeline's next item cannot begin now (the input is all read, or it waits for
        room or money): once nothing online is in flight, the lane's chunks must go out."""
        self.dispatched = 0
        self.seen_total: int | None = None
        """(item, model) pairs in the input, once all were read."""

    def cancel(self) -> None:
        """Stop sending (the user stopped, or the run failed)."""
        for scope in (self._scope, self._feed_scope):
            if scope is not None:
                scope.cancel()

    async def run(
        self,
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
        batch_send: MemoryObjectSendStream[Work | None] | None = None,
        late: MemoryObjectReceiveStream[tuple[Item, str]] | None = None,
    ) -> None:
        """``batch_send`` takes the work of the models that go batch, and None when the
        next item must wait for money: a chunk being built must go out now to settle.
        ``late`` brings, once the input is done, items of batch jobs cancelled to be
        finished online (``--finish-online-after``): they go to the workers, priced online."""
        self._lane = batch_send
        async with work_send, result_send, batch_send or nullcontext(), late or nullcontext():
            with anyio.CancelScope() as self._scope:
                if self._control.stop_reason is not None:
                    return
                self._scope.deadline = self._control.deadline
                if await self._dispatch_all(work_send, result_send, batch_send) and late:
                    if batch_send is not None:
                        await batch_send.aclose()  # the lane may end once its jobs have
                        self._lane = None
                    await self._dispatch_late(late, work_send, result_send)
            self._timed_out(self._scope)

    def _timed_out(self, scope: anyio.CancelScope) -> None:
        """``scope`` ended at the time limit (not at a stop): the run is capped."""
        if scope.cancelled_caught and self._control.stop_reason is None:
            self._control.time_up()

    async def _dispatch_all(
        self,
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
        batch_send: MemoryObjectSendStream[Work | None] | None,
    ) -> bool:
        """Every pair of the input handed on; False if a cap ended dispatching."""
        plan = self._plan
        batch = plan.batch
        batch_models = batch.lanes if batch else frozenset()
        seen = 0
        invalid = 0
        stepper = plan.stepper
        lanes = tuple(plan.lanes)
        async for chunk in _chunks(plan.items):
            for entry in chunk:
                if stepper is not None and isinstance(entry, Item):
                    seen += len(lanes)
                    if not await self._begin(stepper, entry, work_send, result_send):
                        return False
                    continue
                for n, model in enumerate(lanes):
                    seen += 1
                    if plan.skip(model, entry.id, entry.line):
                        continue
                    if isinstance(entry, InvalidItem):
                        invalid += 1
                        await send(result_send, plan.invalid(entry, model))
                        continue
                    price = plan.prices[model]
                    to = batch_send if batch_send is not None and model in batch_models else None
                    share = len(lanes) - n
                    handed = await self._hand_on(
                        entry, model, price, to or work_send, result_send, share
                    )
                    if not handed:
                        return False
                if plan.item_cap is not None:
                    plan.item_cap.seal(entry.id)
        if plan.retrying is None:  # a retry sees only its own pairs
            self.seen_total = seen
            self._control.emit(ItemsCounted(total=seen, invalid=invalid))
        return True

    async def _dispatch_late(
        self,
        late: MemoryObjectReceiveStream[tuple[Item, str]],
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> None:
        assert self._plan.batch is not None
        online = self._plan.batch.online_prices
        item_cap = self._plan.item_cap
        async for item, model in late:
            handed = await self._hand_on(item, model, online[model], work_send, result_send)
            if item_cap is not None:
                item_cap.seal(item.id)
            if not handed:
                return

    async def _hand_on(
        self,
        item: Item,
        model: str,
        price: Price | None,
        to: MemoryObjectSendStream[Work] | MemoryObjectSendStream[Work | None],
        result_send: MemoryObjectSendStream[ItemResult],
        share: int = 1,
    ) -> bool:
        """Price ``item`` on ``model``, reserve its worst case and send it ``to`` the workers
        or the batch lane (a result for one that cannot run); False when a cap ends here.
        Before any item waits for money (a batch or an online one), the lane gets a None:
        its chunk must go out, so money can come back."""
        config, control = self._config, self._control
        if config.max_items is not None and self.dispatched >= config.max_items:
            control.cap("max_items", f"--max-items {config.max_items} reached")
            return False
        await control.wait_unpaused()
        work_or_result = self._prepare(item, model, price, share=share)
        if isinstance(work_or_result, ItemResult):
            await send(result_send, work_or_result)
            return True
        work = work_or_result
        if self._plan.cache is not None and (answered := self._from_cache(work)):
            await send(result_send, answered)
            return True
        if self._lane is not None and not self._funds.fits_now(work.reserved_units):
            await send(self._lane, None)
        if not await self._reserve(work.reserved_units):
            self._unsent(work)
            return False
        await self._send_work(to, work)
        if to is self._lane and self._plan.item_cap is not None:
            self._plan.item_cap.close(item.id)  # its worst case stays counted for the item
        return True

    async def _begin(
        self,
        stepper: Stepper,
        item: Item,
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> bool:
        """Start a pipeline's item: the lanes of its first steps (on resume, of its first
        unfinished ones), holding with them the worst case of its later steps, which
        ``feed`` sends; False when a cap ends dispatching here."""
        config, control = self._config, self._control
        while (
            stepper.online_items >= IN_PROGRESS_PER_WORKER * config.workers
            or stepper.in_progress >= IN_PROGRESS_MOST
        ):
            if self._room.is_set():
                self._room = anyio.Event()
            self._blocked = True
            await self._send_out_if_stalled(self._lane)
            await self._room.wait()
            self._blocked = False
        nxt = stepper.begin(item)
        if not stepper.beginning(item.id):
            # done before, or stopped at a step: only records to write
            if self._plan.item_cap is not None:
                self._plan.item_cap.seal(item.id)
            for result in nxt.results:
                await send(result_send, result)
            return True
        if config.max_items is not None and self.dispatched >= config.max_items:
            stepper.forget(item.id)
            control.cap("max_items", f"--max-items {config.max_items} reached")
            return False
        await control.wait_unpaused()
        results = list(nxt.results)
        works: list[Work] = []
        for n, (key, prompt) in enumerate(nxt.ready):
            share = len(nxt.ready) - n
            work_or_result = self._prepare(item, key, self._plan.prices[key], prompt, share)
            if isinstance(work_or_result, Work) and self._plan.cache is not None:
                work_or_result = self._from_cache(work_or_result) or work_or_result
            if isinstance(work_or_result, Work):
                works.append(work_or_result)
            else:
                results.append(work_or_result)
        later = stepper.later_units(item.id)
        units = sum(work.reserved_units for work in works) + later
        if self._lane is not None and self._chunked and not self._funds.fits_now(units):
            await self._send_out(self._lane)  # what its chunks hold must come back
        self._blocked = True
        reserved = await self._reserve(units)
        self._blocked = False
        if not reserved:
            stepper.forget(item.id)
            for work in works:
                self._unsent(work)
            if self._plan.item_cap is not None:
                self._plan.item_cap.seal(item.id)
            return False
        stepper.hold(item.id, later)  # before any of its results can come back
        for result in nxt.results:
            await send(result_send, result)
        for result in results[len(nxt.results) :]:  # lanes that ended here, without a call
            then = await self._settled(stepper, result, result_send)
            if then is None:
                return False
            works += then
        for work in works:
            await self._send_lane(work_send, self._lane, work)
        return True

    async def feed(
        self,
        inbox: MemoryObjectReceiveStream[ToFeed],
        work_send: MemoryObjectSendStream[Work],
        result_send: MemoryObjectSendStream[ItemResult],
        lane: MemoryObjectSendStream[Work | None] | None = None,
    ) -> None:
        """A pipeline's later steps that workers do not take on themselves (``answered``):
        those a batch job's result starts, a worker's lanes beyond the one it keeps, and
        lanes that go batch. ``inbox`` brings batch results as they are logged, requests a
        job gave back unanswered (which end their item here), work to send on, ``LOOK``
        when a worker's item ended with nothing online left in flight, and None once the
        input is all read. Ends once every item begun has ended, or when the run stops or
        runs out of time (the rest resumes)."""
        stepper = self._plan.stepper
        assert stepper is not None
        read_all = False
        arriving = None if self._plan.batch is None else self._plan.batch.arriving
        async with inbox, work_send, result_send, lane or nullcontext():
            # workers end an item's progress at the time limit without a word: feed ends too
            with anyio.CancelScope(deadline=self._control.deadline) as self._feed_scope:
                async for message in inbox:
                    if message is None:
                        read_all = True
                    elif isinstance(message, Work):
                        await self._send_lane(work_send, lane, message)
                    elif isinstance(message, Unanswered):
                        self._room.set()
                        if arriving:
                            arriving.discard((message.key, message.item_id))
                        units = stepper.unanswered(message.key, message.item_id)
                        if units is not None:
                            self._ended(message.item_id, units)
                    elif isinstance(message, ItemResult):
                        if arriving:
                            arriving.discard((message.model, message.id))
                        nxt = stepper.finished(message)
                        works = [] if nxt is None else await self._go_on(stepper, nxt, result_send)
                        if works is None:
                            return
                        for work in works:
                            await self._send_lane(work_send, lane, work)
                    if read_all and not stepper.in_progress:
                        return
                    if (read_all or self._blocked) and not inbox.statistics().current_buffer_used:
                        await self._send_out_if_stalled(lane)  # nothing more is on its way
            self._timed_out(self._feed_scope)

    async def answered(
        self, result: ItemResult, result_send: MemoryObjectSendStream[ItemResult]
    ) -> Work | None:
        """A worker logged ``result`` of a pipeline's online lane: what its item does next,
        at once, without a trip through the event loop. The worker runs the next online lane
        itself (returned); other lanes ready go to ``feed`` (a worker must never wait for
        room in the workers' own stream)."""
        stepper = self._plan.stepper
        assert stepper is not None
        nxt = stepper.finished(result)
        works = [] if nxt is None else await self._go_on(stepper, nxt, result_send)
        kept = None
        batch = self._plan.batch
        for work in works or ():
            if kept is None and (batch is None or work.model not in batch.lanes):
                kept = work
            else:
                self._tell_feed(work)
        if kept is None and not stepper.online_items:
            self._tell_feed(LOOK)  # feed may end, or a batch chunk must go out now
        return kept

    async def _go_on(
        self,
        stepper: Stepper,
        nxt: Next,
        result_send: MemoryObjectSendStream[ItemResult],
    ) -> list[Work] | None:
        """What an item does after a result: records of lanes that will not run, and the
        reserved work of its next lanes, to be sent; None when the run stopped or ran out of
        time."""
        control = self._control
        self._room.set()
        if nxt.ended:
            self._ended(nxt.item.id, nxt.release)
        for skipped in nxt.results:
            await send(result_send, skipped)
        works: list[Work] = []
        for n, (key, prompt) in enumerate(nxt.ready):
            await control.wait_unpaused()
            if not control.sending():
                return None
            work = await self._step_work(stepper, nxt.item, key, prompt, len(nxt.ready) - n)
            if isinstance(work, ItemResult):  # ended here, without a call
                then = await self._settled(stepper, work, result_send)
                if then is None:
                    return None
                works += then
            elif work is not None:
                works.append(work)
        return works

    async def _settled(
        self, stepper: Stepper, result: ItemResult, result_send: MemoryObjectSendStream[ItemResult]
    ) -> list[Work] | None:
        """A pipeline's lane ended without a call (the response cache answered it, its prompt
        could not be made, no money was left): logged, and its item goes on at once."""
        await send(result_send, result)
        nxt = stepper.finished(result)
        return [] if nxt is None else await self._go_on(stepper, nxt, result_send)

    def _ended(self, item_id: str, release: int) -> None:
        """A pipeline's item has nothing left to send or hear back from in this execution:
        what it held for its later steps goes back, and its item cap is done with."""
        self._room.set()
        if release:
            self._funds.settle(release, 0.0, sent=False)
        if self._plan.item_cap is not None:
            self._plan.item_cap.seal(item_id)

    async def _step_work(
        self, stepper: Stepper, item: Item, key: str, prompt: str, share: int
    ) -> Work | ItemResult | None:
        """A later step's lane of ``item``, its reservation drawn from what the item holds
        (what that does not cover is reserved as a retry's is, before new items); or the
        result it ends with here; None if it cannot be sent (no budget: logged skipped)."""
        plan = self._plan
        work = self._prepare(item, key, plan.prices[key], prompt, share)
        if isinstance(work, Work) and plan.cache is not None:
            work = self._from_cache(work) or work
        if isinstance(work, ItemResult):
            return work
        extra = stepper.draw(item.id, work.reserved_units)
        if extra and not await self._funds.hold_retry(extra):
            self._funds.settle(work.reserved_units - extra, 0.0, sent=False)
            self._unsent(work)
            error = ErrorInfo("budget", "no budget left for this step")
            return plan.result(item, key, "skipped", error=error)
        return work

    async def _send_lane(
        self,
        work_send: MemoryObjectSendStream[Work],
        lane: MemoryObjectSendStream[Work | None] | None,
        work: Work,
    ) -> None:
        """Hand a pipeline's reserved ``work`` to the batch lane if its lane goes batch, else
        to the workers."""
        batch = self._plan.batch
        if lane is not None and batch is not None and work.model in batch.lanes:
            self._chunked = True
            await self._send_work(lane, work)
            if self._plan.item_cap is not None:
                self._plan.item_cap.close(work.item.id)  # its worst case stays counted
        else:
            await self._send_work(work_send, work)

    async def _send_out_if_stalled(self, lane: MemoryObjectSendStream[Work | None] | None) -> None:
        """The batch lane's chunks go out when nothing else could add to them soon: no online
        lane of a pipeline's item is in flight and no ended job's results are on their way
        (the caller knows no item can begin now)."""
        stepper, batch = self._plan.stepper, self._plan.batch
        if (
            lane is not None
            and self._chunked
            and stepper is not None
            and not stepper.online_items
            and (batch is None or not batch.arriving)
        ):
            await self._send_out(lane)

    async def _send_out(self, lane: MemoryObjectSendStream[Work | None]) -> None:
        self._chunked = False
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send(lane, None)

    async def _send_work(
        self,
        to: MemoryObjectSendStream[Work] | MemoryObjectSendStream[Work | None],
        work: Work,
    ) -> None:
        """Hand reserved ``work`` on (its money back if that is cancelled)."""
        try:
            await send(to, work)
        except BaseException:
            self._funds.settle(work.reserved_units, 0.0, sent=False)
            raise
        self.dispatched += 1

    def _prepare(
        self,
        item: Item,
        model: str,
        price: Price | None,
        prompt: str | None = None,
        share: int = 1,
    ) -> Work | ItemResult:
        """``item`` on lane ``model`` priced and bounded, with ``prompt`` (a pipeline's
        step renders its own) or its lane's template rendered for it; ``share``: how many of
        the item's lanes (this one included) are being sent now, for ``--max-item-cost``."""
        plan, config = self._plan, self._config
        lane = plan.lanes[model]
        if prompt is None:
            try:
                prompt = render_item(
                    lane.template, item.fields, edited=plan.prompt_override is not None
                )
            except ValueError as exc:
                error = ErrorInfo("invalid_input", str(exc))
                return plan.result(item, model, "failed", error=error)
        bound = input_token_bound(lane.system, prompt) + lane.framing
        max_tokens = plan.max_tokens or lane.max_tokens
        answers = lane.answers
        units = 0
        item_cap = plan.item_cap
        if price is not None:
            units = to_units_up(price.worst_case(bound, max_tokens * answers))
            fitted: tuple[int, int] | None = (max_tokens, units)
            if item_cap is not None:
                # A fair share of what the item has left for each lane going now, or all of
                # it when a share cannot hold this one's prompt.
                room = item_cap.room(item.id)
                for allowance in dict.fromkeys((room // share, room)):
                    fitted = fit(price, bound, max_tokens, answers, allowance, to_usd(allowance))
                    if fitted is not None:
                        break
            if fitted is None:  # only the item cap refuses a call
                assert item_cap is not None and config.max_item_cost is not None
                used = item_cap.used(item.id)
                message = too_dear(config.max_item_cost, used, price.worst_case(bound, 1))
                return plan.result(item, model, "skipped", error=ErrorInfo("budget", message))
            max_tokens, units = fitted
        if item_cap is not None:
            item_cap.open(item.id, units)
        estimate = estimate_tokens(prompt) + estimate_tokens(lane.system or "")
        return Work(item, model, prompt, max_tokens, bound, estimate, units, answers, price)

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
            self._unsent(work)
            price = work.price
            return plan.result(
                work.item, work.model, "ok", output=answer.text, parsed=answer.parsed,
                finish_reason=answer.finish_reason, started=started, cached=True,
                saved=0.0 if price is None else price.cost(answer.usage),
            )  # fmt: skip
        if cache.only:
            self._unsent(work)
            error = ErrorInfo("not_cached", "--cache-only: the response cache has no answer to it")
            return plan.result(work.item, work.model, "skipped", error=error)
        return None

    def _unsent(self, work: Work) -> None:
        """``work`` will not be sent: what it held of its item's cap is given back."""
        if self._plan.item_cap is not None:
            self._plan.item_cap.close(work.item.id, work.reserved_units, 0)

    async def _reserve(self, units: int) -> bool:
        """Hold the worst case of the next item; False when the run's cap can never fit it,
        or not in this execution (detached, what it needs is held by batch jobs)."""
        if await self._funds.hold(units, self._waits_in_vain):
            return True
        cap = self._config.max_cost
        assert cap is not None  # only a cap refuses a hold
        message = f"--max-cost {usd(cap)} reached: the next item could pass it"
        if self._funds.budget.fits_ever(units) and self._waits_in_vain():
            message = (
                f"--max-cost {usd(cap)}: what is left of it is held by the batch jobs submitted "
                "(--detach does not wait for their results, which give back what they did not "
                "use: resume goes on)"
            )
        unsettled = self._plan.state.unsettled_usd
        if unsettled:
            message += (
                f" (${unsettled:.6f} of what the log counts as spent is for calls that were in "
                "flight when the run was killed: they may not have been billed)"
            )
        self._control.cap("max_cost", message)
        return False

    def _waits_in_vain(self) -> bool:
        """Detached, and every reservation is held by batch jobs at their provider (none by
        calls, or by a chunk not yet submitted): their results, which would give money back,
        are not waited for in this execution."""
        batch, funds = self._plan.batch, self._funds
        return (
            batch is not None
            and batch.detach
            and funds.batched_units > 0
            and funds.budget.reserved_units <= funds.batched_units
        )


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
