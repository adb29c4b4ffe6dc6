"""Following a submitted batch job: look at it with backoff, fetch its results, settle them.

A job is looked at a few seconds after it was submitted, then twice as long after
each look, up to ``--poll-s``; a provider's rate limit on the looks (a 429 with its
wait) is honoured, and pause holds the looks back. Every wait goes through
``Control.waiting``: a stop or the time limit ends it at once, and the job keeps
running at the provider (with ``--cancel-at-time-limit`` it is cancelled first).

When the job has ended (expired, or was cancelled) its results are fetched in one
pass (an error on the way reads them again, past those already read) and become
``result`` records like online ones: ``ok``, or ``failed`` with the error's kind;
each settles its request's reservation at the batch price of the usage it reports.
A request that gave no result (expired, cancelled; all of a job refused whole)
gives its reservation back and its item stays pending for resume. A pair the log
already holds a result for (a fetch cut short by a kill, done again) is passed
over, so no pair ever gets two results from one job. Only then is the job's record
``closed``.

Results need their items' fields, which the lane does not keep: they are read back
from the input by line when the job's results are fetched, so memory holds one
job's items at a time, never the run's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from contextlib import suppress
from dataclasses import replace
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from engine import log
from engine._budget import Funds, cap_reached, to_usd
from engine._cache import Answer
from engine._config import Format
from engine._control import Control
from engine._errors import FATAL_KINDS, ProviderError
from engine._events import BATCH_ENDED_STATES, BatchJob, BatchJobEnded, BatchJobProgressed
from engine._items import Item
from engine._plan import BatchPlan, Plan, call_request, cut_off
from engine._results import ErrorInfo, ItemResult, Usage
from engine._retry import backoff_delay, server_wait
from engine.providers import CallRequest, CallResult, JobStatus, Outcome
from engine.readers import read_items

FIRST_LOOK_S = 3.0
"""The first wait before looking at a new job (``--poll-s`` if shorter)."""
ENDED_STATES = BATCH_ENDED_STATES
CANCEL_DEADLINE_S = 30.0


def job_view(job: log.BatchRecord) -> BatchJob:
    """What subscribers are told of a job, from its latest record."""
    succeeded, errored, processing = job.counts
    going = job.open and job.state not in ENDED_STATES
    return BatchJob(
        model=job.model,
        job_id=job.job_id or job.token,
        state=job.state,
        requests=len(job.items),
        succeeded=succeeded,
        errored=errored,
        processing=processing if going else 0,
        submitted_at=job.since,
        expires_at=job.expires_at if going else None,  # an ended job expires no more
    )


class Slots:
    """Jobs submitted and not yet ended, within ``--max-parallel-batches``."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._live = 0
        self._changed = anyio.Event()

    def take(self) -> None:
        self._live += 1

    def give_back(self) -> None:
        self._live -= 1
        self._changed.set()

    async def wait(self, control: Control) -> bool:
        """Take a slot once one is free; False if a stop or the time limit came first."""
        while self._live >= self._most:
            if self._changed.is_set():
                self._changed = anyio.Event()
            with control.waiting() as wait:
                await self._changed.wait()
            if wait.cancelled_caught:
                return False
        self._live += 1
        return True


class JobTracker:
    def __init__(
        self,
        plan: Plan,
        funds: Funds,
        control: Control,
        note: Callable[[dict[str, Any]], None],
        results: MemoryObjectSendStream[ItemResult],
        online: MemoryObjectSendStream[tuple[Item, str]] | None = None,
        *,
        in_order: Callable[[dict[str, Any]], ItemResult],
        cost_changed: Callable[[], None] = lambda: None,
        answered: Callable[[ItemResult], None] = lambda result: None,
        unanswered: Callable[[str, str], None] = lambda key, item_id: None,
    ) -> None:
        """``in_order`` wraps a record to send down ``results``: written behind every
        result sent before it (``LogTask``'s). ``answered`` is told each result once it is
        sent to be logged (a pipeline's item goes on). ``unanswered`` is told (lane, item id) of
        each request that gets no result in this execution (its job ended without answering
        it, or is left running, or its chunk never went out): a pipeline's item goes no
        further."""
        assert plan.batch is not None
        self._in_order = in_order
        self._plan = plan
        self._batch: BatchPlan = plan.batch
        self._config = plan.config
        self._funds = funds
        self._control = control
        self._note = note
        self._results = results
        self._online = online
        """Where the unfinished items of a job cancelled by ``--finish-online-after`` go:
        back to the dispatcher, for the workers."""
        self.cost_changed = cost_changed
        self._answered = answered
        self.unanswered = unanswered
        """Tells subscribers how the money stands (``CostUpdated``): a job was submitted, or
        ended with requests that gave their reservations back and no result to log."""
        self.saved_usd = 0.0
        """What this execution's batch results would have cost online, less their cost."""
        self.left = 0
        """Jobs left running at the provider (detached, stopped, out of time)."""
        self._unreadable: dict[str, int] = {}
        """Job id -> looks in a row its provider answered with an error no retry mends."""

    def seen(
        self, job: log.BatchRecord, status: JobStatus, *, logged: bool = True
    ) -> log.BatchRecord:
        """``job`` as ``status`` shows it; logged when its state or job id changed (unless
        not ``logged``: the caller writes it)."""
        counts = (status.succeeded, status.errored, status.processing)
        state = status.state
        changed = state != job.state or status.job_id != job.job_id
        if not changed and counts == job.counts:
            return job
        job = replace(
            job,
            state=state,
            job_id=status.job_id,
            provider_state=status.provider_state,
            counts=counts,
            expires_at=status.expires_at,
            t=time.time(),
        )
        if changed and logged:
            self._note(log.batch_record(job))
        return job

    def view(self, job: log.BatchRecord) -> BatchJob:
        return job_view(job)

    async def first_look(self, job: log.BatchRecord) -> log.BatchRecord | None:
        """Look once at a job found in the log, before anything is dispatched: one that
        ended is fetched now, so its unfinished items go out again in this execution.
        The job if it still runs, else None."""
        status = await self._status(job)
        if status is None:
            return None if self._control.failure is not None else job
        job = self._seen_now(job, status)
        if status.state in ENDED_STATES:
            await self._fetch(job, status)
            return None
        return job

    async def follow(self, job: log.BatchRecord) -> None:
        """Look at ``job`` with backoff until it ends, then fetch its results."""
        control, config = self._control, self._config
        interval = min(FIRST_LOOK_S, config.poll_s)
        cancelled = False
        while True:
            with control.waiting() as wait:
                await anyio.sleep(interval)
            if wait.cancelled_caught:
                await self._wait_ended(job)
                return
            await control.wait_unpaused()
            if control.halted:
                self.leave(job)
                return
            interval = min(interval * 2, config.poll_s)
            status = await self._status(job)
            if status is None:
                if control.failure is not None:
                    return
                continue
            job = self._seen_now(job, status)
            if status.state in ENDED_STATES:
                await self._fetch(job, status, online=cancelled)
                return
            after = config.finish_online_after
            if after is not None and not cancelled and time.time() - job.since >= after:
                cancelled = True
                await _cancel(self._batch.apis[job.model], status.job_id)

    async def _status(self, job: log.BatchRecord) -> JobStatus | None:
        """How the job stands; None when the provider could not say (the run failed if it
        never will: a bad key, a job it does not know). A rate limit's wait is honoured."""
        assert job.job_id is not None
        try:
            status = await self._batch.apis[job.model].status(job.job_id)
        except ProviderError as exc:
            unreadable = 0 if exc.retryable else self._unreadable.get(job.job_id, 0) + 1
            self._unreadable[job.job_id] = unreadable
            if exc.kind == "not_found":
                self._control.fail(
                    f"{job.model}: batch job {job.job_id} is not known to its provider "
                    "(deleted, past its retention, or the key is another account's): resume "
                    f"with --forget-job {job.job_id} to send its requests without a result "
                    "again (paid again if the job had run them)"
                )
                return None
            if exc.kind in FATAL_KINDS or unreadable > self._config.retry.retries:
                self._control.fail(f"{job.model}: batch job {job.job_id}: {exc.message}")
                return None
            wait = server_wait(exc.retry_after, self._config.retry)
            if wait:
                with self._control.waiting():
                    await anyio.sleep(wait)
            return None
        self._unreadable.pop(job.job_id, None)
        return status

    def _seen_now(self, job: log.BatchRecord, status: JobStatus) -> log.BatchRecord:
        before = job
        job = self.seen(job, status)
        if job is not before:
            self._control.emit(BatchJobProgressed(self.view(job)))
        return job

    def leave(self, job: log.BatchRecord) -> None:
        """``job`` is left running at its provider (detached, stopped, out of time): a
        pipeline's items waiting for it go no further in this execution."""
        self.left += 1
        if self._plan.stepper is not None:
            for entry in job.items:
                self.unanswered(job.model, entry.id)

    async def _wait_ended(self, job: log.BatchRecord) -> None:
        """A stop or the time limit ended the wait: the job keeps running at the provider,
        unless the time limit came with ``--cancel-at-time-limit``."""
        self.leave(job)
        if self._config.cancel_at_time_limit and not self._control.halted and job.job_id:
            await _cancel(self._batch.apis[job.model], job.job_id)

    async def _fetch(
        self, job: log.BatchRecord, status: JobStatus, *, online: bool = False
    ) -> None:
        """Every result of the ended ``job`` into the log, then its record closed; with
        ``online`` what it left unfinished is sent to be finished online."""
        assert job.job_id is not None
        api = self._batch.apis[job.model]
        status_of = self._plan.state.status
        entries = {
            entry.custom_id: entry
            for entry in job.items
            if status_of(job.model, entry.id, entry.line) is None
        }
        if self._plan.stepper is not None:  # the next steps' chunks wait for these
            self._batch.arriving.update((job.model, e.id) for e in entries.values())
        items = await anyio.to_thread.run_sync(
            _items_at, self._config.input, self._config.format, {e.id for e in entries.values()}
        )
        unfinished = 0
        # What an answer is read against (its schema, its wrapping): all but the prompt.
        lane = self._plan.lanes[job.model]
        asked = call_request(self._config, lane, "", lane.max_tokens)

        def lookup(custom_id: str) -> CallRequest | None:
            return asked if custom_id in entries else None

        attempt = 0
        while status.state != "failed":  # a job refused whole has no results: all pending
            try:
                async for custom_id, outcome in api.results(job.job_id, lookup):
                    entry = entries.pop(custom_id, None)
                    if entry is None:
                        continue
                    item = items.get(entry.line)
                    if item is None or item.id != entry.id:
                        item = Item(entry.id, entry.line, {})
                    if outcome is None:
                        unfinished += 1
                        await self._unfinished(job.model, item, entry.units, online)
                        continue
                    result = self._result(job, item, entry, outcome)
                    await self._results.send(result)
                    self._answered(result)
                break
            except ProviderError as exc:  # what was read is logged; the rest is read again
                attempt += 1
                if exc.kind in FATAL_KINDS or attempt > self._config.retry.retries:
                    self.leave(job)  # open still: a resume fetches the rest
                    self._control.fail(
                        f"{job.model}: batch job {job.job_id}: results not read: "
                        f"{exc.message} (resume reads them again)"
                    )
                    return
                delay = backoff_delay(
                    attempt, settings=self._config.retry, retry_after=exc.retry_after
                )
                with self._control.waiting() as wait:
                    await anyio.sleep(delay)
                if wait.cancelled_caught:
                    self.leave(job)
                    return
        for entry in entries.values():  # no word of them: as unfinished
            unfinished += 1
            item = items.get(entry.line) or Item(entry.id, entry.line, {})
            await self._unfinished(job.model, item, entry.units, online)
        job = replace(self.seen(job, status, logged=False), closed=True, t=time.time())
        await self._results.send(self._in_order(log.batch_record(job)))  # behind its results
        self._control.emit(BatchJobEnded(self.view(job), unfinished))
        if unfinished:
            self.cost_changed()

    async def _unfinished(self, model: str, item: Item, units: int, online: bool) -> None:
        """A request that gave no result gives its money back; its item stays pending, or
        goes to be finished online."""
        self._funds.settle_batched(units, 0.0)
        self._batch.waiting.discard((model, item.id))
        self.unanswered(model, item.id)
        if online and self._online is not None:
            with suppress(anyio.BrokenResourceError):  # dispatching ended (a cap): pending
                await self._online.send((item, model))

    def _result(
        self, job: log.BatchRecord, item: Item, entry: log.BatchEntry, outcome: Outcome
    ) -> ItemResult:
        plan, model = self._plan, job.model
        online = self._batch.online_prices.get(model)
        price = None if online is None else online.batch()  # whatever --batch says now
        assert outcome is not None
        paid = outcome.usage
        billed = paid is not None
        usage = paid or Usage()
        if price is None or not billed:
            self._funds.settle_batched(entry.units, 0.0)
            cost = 0.0
        else:
            actual = None if usage.unknown else price.cost(usage)
            charged = self._funds.settle_batched(entry.units, actual)
            cost = to_usd(charged) if actual is None else actual
            message = cap_reached(self._funds.budget, model, charged, entry.units)
            if message is not None:  # the lane submits no more; jobs out there are followed
                self._control.cap("max_cost", message)
            if online is not None and actual is not None:
                self.saved_usd += online.cost(usage) - actual
        latency = max(0.0, time.time() - job.since) * 1000
        if isinstance(outcome, CallResult) and outcome.finish_reason == "length":
            limit = plan.max_tokens or plan.lanes[model].max_tokens
            cut = plan.result(
                item, model, "truncated", error=cut_off(limit),
                output=outcome.text, usage=usage, cost=cost, attempts=1,
                finish_reason=outcome.finish_reason, simulated=outcome.simulated,
            )  # fmt: skip
            return replace(cut, latency_ms=latency)
        if isinstance(outcome, CallResult):
            parsed, error = outcome.parsed, None
            validator = plan.lanes[model].validator
            if validator is not None:
                try:
                    parsed = validator.parse(outcome.text, outcome.parsed)
                except ValueError as exc:
                    error = ErrorInfo("invalid_output", str(exc))
            if error is None:
                if plan.cache is not None and billed:
                    answer = Answer(outcome.text, parsed, outcome.finish_reason, usage)
                    plan.cache.keep(entry.cache_key, answer)
                return replace(
                    plan.result(
                        item, model, "ok", output=outcome.text, parsed=parsed, usage=usage,
                        cost=cost, attempts=1, finish_reason=outcome.finish_reason,
                        simulated=outcome.simulated,
                    ),
                    latency_ms=latency,
                )  # fmt: skip
            output = outcome.text
        else:
            assert outcome is not None
            error, output = ErrorInfo(outcome.kind, outcome.message), None
        failed = plan.result(item, model, "failed", error=error, usage=usage, cost=cost, attempts=1)
        return replace(failed, output=output, latency_ms=latency)


async def _cancel(api: Any, job_id: str) -> None:
    """Ask the provider to cancel; a refusal (it ended meanwhile) is no error."""
    with anyio.move_on_after(CANCEL_DEADLINE_S, shield=True):
        try:
            await api.cancel(job_id)
        except ProviderError:
            pass


def _items_at(path: str, fmt: Format | None, ids: Collection[str]) -> dict[int, Item]:
    """The items of ``path`` whose ids are wanted, by line; stops once all were read."""
    wanted = set(ids)
    found: dict[int, Item] = {}
    if not wanted or path == "-":
        return found
    stream = read_items(path, fmt)
    try:
        for entry in stream:
            if isinstance(entry, Item) and entry.id in wanted:
                found[entry.line] = entry
                if len(found) >= len(wanted):
                    break
    finally:
        stream.close()
    return found
