"""One execution of a run: wires the dispatcher, long-lived workers and the log task.

    input reader ──> dispatcher ──(stream, no buffer)──> N workers ──> log task ──> subscribers
                     pause gate                          rate limit      one write()
                     caps, reservation                   call, retries   + fsync per group
                     (_dispatch)                         (_attempts)     (_logtask)

The parts share the plan (``_plan``), the money (``_budget.Funds``) and the
switches (``_control.Control``), and pass work and results down streams, with
one direct hop: a worker that got an answer of a pipeline's item asks the
dispatcher what the item does next (``Dispatcher.answered``) and runs its next
lane itself, since a trip through the streams and the log's group commit cost
twice what the call did at zero latency. This module owns what spans them: the task
groups and their cancel scopes, the worker pool, the counts, and the end.

Workers are long-lived tasks pulling from one stream (starting a task per item
costs more than the item does at zero latency). Stop cancels the dispatcher
only (in-flight calls finish and are logged); abort cancels the workers too
(their items have no terminal record and run again on resume). The log task is
never cancelled by either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import nullcontext, suppress

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine import log
from engine._attempts import Attempts
from engine._batch import BatchLane, JobTracker
from engine._budget import Budget, Funds, to_units, to_usd
from engine._control import Control
from engine._dispatch import Dispatcher, ToFeed, send
from engine._events import (
    CostUpdated,
    FinalState,
    ItemFinished,
    ItemsCounted,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStopping,
    Subscriber,
    WorkersChanged,
)
from engine._items import Item
from engine._logtask import LogTask, in_order
from engine._plan import Plan, Work
from engine._results import ItemResult, Usage
from engine._stepper import Unanswered

BATCH_BUFFER = 256
"""Items the dispatcher may hand the batch lane ahead of it (each holding its reservation):
enough that the two do not take turns item by item."""


class Execution:
    def __init__(self, plan: Plan, subscribers: Sequence[Subscriber], workers: int) -> None:
        self._plan = plan
        self._control = Control(subscribers, abort=self.abort)
        self._budget = Budget.create(plan.config.max_cost, plan.state.cost_usd)
        if plan.batch is not None:
            self._budget.carry(plan.batch.carried_units)
        self._log = LogTask(plan.writer, self._committed, self._control.fail)
        self._funds = funds = Funds(self._budget, urge=self._log.urge)
        if plan.batch is not None:
            funds.batched(plan.batch.carried_units)
        self._log.funds = funds
        self._tracker: JobTracker | None = None
        self._dispatcher = Dispatcher(plan, funds, self._control, self._to_feed)
        self._attempts = Attempts(plan, funds, self._control, self._log.note)
        self._inbox: MemoryObjectSendStream[ToFeed] | None = None
        """What ``Dispatcher.feed`` is told: batch results, work workers hand on, ..."""
        self._target_workers = workers
        self._live_workers = 0
        self._work_scope: anyio.CancelScope | None = None
        self._workers_tg: TaskGroup | None = None
        self._work_recv: MemoryObjectReceiveStream[Work] | None = None
        self._result_send: MemoryObjectSendStream[ItemResult] | None = None
        self._counts = {
            "ok": plan.state.ok,
            "failed": plan.state.failed,
            "skipped": plan.state.skipped,
            "truncated": plan.state.truncated,
        }
        state = plan.state
        self._usage = Usage(state.input_tokens, state.output_tokens, state.cached_tokens)
        self._usage_unknown = 0
        self._cached = 0
        self._saved_units = 0
        self._cache_saved_usd = 0.0
        self._started = time.monotonic()

    # ---- control (sync: safe to call from any task on the loop) ----

    def pause(self) -> None:
        if self._control.pause():
            self._log.note(log.pause_record())
            self._control.emit(RunPaused())

    def resume(self) -> None:
        if self._control.unpause():
            self._log.note(log.resume_record())
            self._control.emit(RunResumed())

    @property
    def paused(self) -> bool:
        return self._control.paused

    def stop(self) -> None:
        """Send nothing more; let calls in flight finish and be logged."""
        if not self._control.halted and self._control.failure is None:
            self._control.emit(RunStopping())
        self._control.halt()  # items a worker holds but has not started stay unsent
        self._dispatcher.cancel()

    def abort(self) -> None:
        """Cancel calls in flight too; they have no terminal record and run again on resume."""
        self.stop()
        if self._work_scope is not None:
            self._work_scope.cancel()

    def set_workers(self, count: int) -> None:
        self._target_workers = max(1, count)
        self._spawn_workers()
        self._control.emit(WorkersChanged(self._target_workers))
        self._emit_cost()

    @property
    def failure(self) -> str | None:
        return self._control.failure

    # ---- the run ----

    async def run(self) -> RunFinished:
        emit = self._control.emit
        if self._plan.total is not None:
            emit(ItemsCounted(total=self._plan.total, invalid=0))
        emit(WorkersChanged(self._target_workers))
        # A small buffer lets a worker take its next item without waiting for the dispatcher
        # to be scheduled; what sits there holds a reservation, as if it were in flight.
        work_send, work_recv = anyio.create_memory_object_stream[Work](self._target_workers)
        result_send, result_recv = self._log.open()
        self._work_recv, self._result_send = work_recv, result_send
        batch_send: MemoryObjectSendStream[Work | None] | None = None
        inbox: MemoryObjectReceiveStream[ToFeed] | None = None
        if self._plan.stepper is not None:  # before the lane: a job fetched at once feeds it
            self._inbox, inbox = anyio.create_memory_object_stream[ToFeed](math.inf)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._log.run, result_recv)
            async with result_send, work_recv:
                with anyio.CancelScope() as self._work_scope:
                    async with anyio.create_task_group() as lane_tg:
                        late_recv = None
                        if self._plan.batch is not None:
                            batch_send, batch_recv = anyio.create_memory_object_stream[Work | None](
                                BATCH_BUFFER
                            )
                            late_send = None
                            if self._plan.config.finish_online_after is not None:
                                late_send, late_recv = anyio.create_memory_object_stream[
                                    tuple[Item, str]
                                ](math.inf)
                            ready = anyio.Event()
                            lane_tg.start_soon(
                                self._run_lane, batch_recv, result_send.clone(), late_send, ready
                            )
                            await ready.wait()
                        async with anyio.create_task_group() as workers_tg:
                            self._control.start_clock(self._plan.config.time_limit)
                            self._workers_tg = workers_tg
                            self._spawn_workers()
                            if inbox is not None:
                                workers_tg.start_soon(
                                    self._dispatcher.feed, inbox, work_send.clone(),
                                    result_send.clone(), batch_send and batch_send.clone(),
                                )  # fmt: skip
                            await self._dispatcher.run(
                                work_send, result_send.clone(), batch_send, late_recv
                            )
                            self._to_feed(None)  # the input is all read
                self._workers_tg = None  # too late for more workers: set_workers only records
                if self._inbox is not None:
                    self._inbox.close()
        return await self._finish()

    async def _run_lane(
        self,
        batch_recv: MemoryObjectReceiveStream[Work | None],
        result_send: MemoryObjectSendStream[ItemResult],
        late_send: MemoryObjectSendStream[tuple[Item, str]] | None,
        ready: anyio.Event,
    ) -> None:
        """Batch models' work: chunked into provider jobs, followed until their results are in;
        what a job cancelled to finish online left unfinished goes to ``late_send``."""
        async with result_send, late_send or nullcontext():
            tracker = JobTracker(
                self._plan,
                self._funds,
                self._control,
                self._log.note,
                result_send,
                late_send,
                in_order=in_order,
                cost_changed=self._emit_cost,
                answered=self._to_feed,
                unanswered=self._unanswered,
            )
            self._tracker = tracker
            lane = BatchLane(
                self._plan, self._funds, self._control, tracker, self._log.write_now, self._log.note
            )
            await lane.run(batch_recv, ready)

    def _spawn_workers(self) -> None:
        tg, recv, send = self._workers_tg, self._work_recv, self._result_send
        if tg is None or recv is None or send is None:
            return
        while self._live_workers < self._target_workers:
            self._live_workers += 1
            tg.start_soon(self._worker, recv.clone(), send.clone())

    async def _worker(
        self,
        work_recv: MemoryObjectReceiveStream[Work],
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
                    while (result := await self._attempts.run(work)) is not None:
                        await send(result_send, result)
                        if self._plan.stepper is None:
                            break
                        # a pipeline's item goes on here, its next lane run by this worker
                        if (kept := await self._dispatcher.answered(result, result_send)) is None:
                            break
                        work = kept
                    if self._live_workers > self._target_workers:
                        return
        finally:
            self._live_workers -= 1

    # ---- results ----

    def _committed(self, group: list[ItemResult]) -> None:
        """A group is on disk: count it and tell the subscribers."""
        emit = self._control.emit
        for result in group:
            self._count(result)
            emit(ItemFinished(result))
        self._emit_cost()

    def _unanswered(self, key: str, item_id: str) -> None:
        self._to_feed(Unanswered(key, item_id))

    def _to_feed(self, message: ToFeed) -> None:
        """Tell a pipeline's feeder (gone once the run stops: then nothing is to start)."""
        if self._inbox is not None:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._inbox.send_nowait(message)

    def _emit_cost(self) -> None:
        budget, funds = self._budget, self._funds
        self._control.emit(
            CostUpdated(
                budget.spent_usd,
                budget.reserved_usd,
                budget.cap_usd,
                in_flight_usd=to_usd(funds.exposed_units),
                calls_in_flight=funds.calls_in_flight,
                batch_usd=to_usd(funds.batched_units),
            )
        )

    def _count(self, result: ItemResult) -> None:
        previous = self._plan.state.status(result.model, result.id, result.line)
        if previous is not None:
            self._counts[previous] -= 1
        self._counts[result.status] += 1
        self._usage = self._usage + result.usage
        self._usage_unknown += result.usage.unknown
        if result.cached:
            self._cached += 1
            self._saved_units += to_units(result.saved_usd)
        self._cache_saved_usd += result.cache_saved_usd

    async def _finish(self) -> RunFinished:
        control = self._control
        state: FinalState = control.stop_reason or "finished"
        seen_total = self._dispatcher.seen_total
        total = seen_total if seen_total is not None else self._plan.total
        done = sum(self._counts.values())
        remaining = 0 if total is None else max(0, total - done)
        if state == "stopped" and remaining == 0 and seen_total is not None:
            state = "finished"
        jobs_left = 0 if self._tracker is None else self._tracker.left
        if state == "finished" and self._tracker is not None and (jobs_left or remaining):
            # Detached, or a job expired or was cancelled: a resume fetches or sends the rest.
            state = "stopped"
        retrying = self._plan.retrying
        if state == "finished" and retrying is not None and (total is None or remaining):
            state = retrying
        error = await self._log.close(log.finish_record(state, spent_usd=self._budget.spent_usd))
        if error is not None:
            control.fail(error)
            state = "failed"
        finished = RunFinished(
            state=state,
            ok=self._counts["ok"],
            failed=self._counts["failed"],
            skipped=self._counts["skipped"],
            truncated=self._counts["truncated"],
            remaining=remaining,
            cost_usd=self._budget.spent_usd,
            input_tokens=self._usage.input_tokens,
            output_tokens=self._usage.output_tokens,
            elapsed_s=time.monotonic() - self._started,
            overspent_usd=to_usd(self._budget.overspent_units),
            usage_unknown=self._usage_unknown,
            unpriced=tuple(m for m, price in self._plan.prices.items() if price is None),
            batch_saved_usd=0.0 if self._tracker is None else self._tracker.saved_usd,
            batch_jobs_left=jobs_left,
            cached=self._cached,
            saved_usd=to_usd(self._saved_units),
            cached_tokens=self._usage.cached_tokens,
            cache_saved_usd=self._cache_saved_usd,
        )
        control.emit(finished)
        return finished
