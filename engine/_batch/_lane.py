"""The batch lane: the dispatcher's work for batch models, chunked into provider jobs.

The dispatcher prices and reserves each item as for an online call (at the batch
price) and hands it here instead of to a worker. The lane keeps one chunk per lane
(a model, or one model of a pipeline's step: a job holds one step's requests) and
submits it when the next request would pass the provider's ``BatchLimits`` or
``--batch-size``, when the input ends, or when the dispatcher sends a None: the next
item must wait for money (which comes back only as results arrive, so a chunk that
waits to fill up would wait forever), or a pipeline could not go on without the
chunk. A chunk the cap cannot hold is thereby made smaller: it goes out with what
was reserved.

Before a job is submitted its intent is in the log, fsynced: the token the job is
created with, and every request's custom_id with its item and its reservation. A
kill at any instant after that leaves something resume can find the job by
(``_reattach``); a kill before it leaves items that were never sent. The
reservations of a submitted job stay held until its results settle them
(``_jobs``): the intent on disk is what makes them durable, not a ``hold``.

Memory is one chunk per lane being built: requests are streamed to the provider,
and once a job is submitted only its entries (ids, lines, reservations) are kept.

A chunk's number, in its token and its custom_ids, is taken when it opens; a chunk a
stop drops leaves its number unused, so the next execution numbers from past the
highest token in the log (``next_job_number``), never from the count of jobs: a
token used twice would hide the first job, whose items would be sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from engine import log
from engine._batch._jobs import JobTracker, Slots
from engine._batch._reattach import candidates
from engine._budget import Funds
from engine._control import Control
from engine._errors import ProviderError
from engine._events import BatchJobSubmitted
from engine._plan import BatchPlan, Plan, Work
from engine._retry import backoff_delay
from engine.providers import BatchApi, BatchRequest, JobStatus

SUBMIT_ATTEMPTS = 4
"""Tries to create one job when the provider answers with a retryable error."""


def job_token(run_id: str, number: int) -> str:
    """The client token job ``number`` of run ``run_id`` is created with."""
    return f"batchdeck-{run_id}-{number}"


def next_job_number(tokens: Collection[str]) -> int:
    """The first job number past every one the tokens in the log have used."""
    numbers = (token.rpartition("-")[2] for token in tokens)
    return 1 + max((int(n) for n in numbers if n.isdigit()), default=0)


@dataclass(slots=True)
class _Chunk:
    model: str
    number: int
    requests: list[BatchRequest] = field(default_factory=list)
    entries: list[log.BatchEntry] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    bytes: int = 0


class BatchLane:
    def __init__(
        self,
        plan: Plan,
        funds: Funds,
        control: Control,
        tracker: JobTracker,
        write_now: Callable[[dict[str, Any]], Coroutine[Any, Any, bool]],
        note: Callable[[dict[str, Any]], None],
    ) -> None:
        assert plan.batch is not None
        self._plan = plan
        self._batch: BatchPlan = plan.batch
        self._config = plan.config
        self._funds = funds
        self._control = control
        self._tracker = tracker
        self._write_now = write_now
        self._note = note
        self._next_job = plan.batch.next_job
        self._slots = Slots(plan.config.max_parallel_batches)
        self._chunks: dict[str, _Chunk] = {}

    async def run(
        self, work_recv: MemoryObjectReceiveStream[Work | None], ready: anyio.Event
    ) -> None:
        """Look at the jobs earlier executions left open, fetching those that ended, and
        set ``ready`` (the dispatcher waits for it: what they left unfinished goes out
        again); then submit the dispatcher's work in jobs and follow every job until its
        results are in (or the run is detached, stopped or out of time)."""
        async with anyio.create_task_group() as tg:
            try:
                for job in self._batch.open_jobs:
                    running = await self._tracker.first_look(job)
                    if running is None:
                        continue
                    view = self._tracker.view(running)
                    self._control.emit(BatchJobSubmitted(view, self._waiting(running)))
                    self._slots.take()
                    tg.start_soon(self._follow, running)
            finally:
                ready.set()
            async with work_recv:
                while (work := await _next(work_recv)) is not _END:
                    if work is None:
                        for model in list(self._chunks):
                            await self._submit(self._chunks.pop(model), tg)
                        continue
                    await self._add(work, tg)
            for model in list(self._chunks):
                await self._submit(self._chunks.pop(model), tg)

    def _waiting(self, job: log.BatchRecord) -> tuple[str, ...]:
        """The ids of a re-attached job's requests the log holds no result for."""
        status = self._plan.state.status
        return tuple(e.id for e in job.items if status(job.model, e.id, e.line) is None)

    async def _add(self, work: Work, tg: TaskGroup) -> None:
        api = self._batch.apis[work.model]
        chunk = self._chunks.get(work.model) or self._new_chunk(work.model)
        request = self._request(work, chunk.number)
        size = api.request_bytes(request)
        most = min(self._config.batch_size or api.limits.max_requests, api.limits.max_requests)
        if chunk.requests and chunk.bytes + size > api.limits.max_bytes:
            await self._submit(chunk, tg)
            chunk = self._new_chunk(work.model)
            request = self._request(work, chunk.number)
        chunk.requests.append(request)
        item = work.item
        entry = log.BatchEntry(
            request.custom_id, item.id, item.line, work.reserved_units, work.cache_key
        )
        chunk.entries.append(entry)
        chunk.ids.append(work.item.id)
        chunk.bytes += size
        self._chunks[work.model] = chunk
        if len(chunk.requests) >= most:
            await self._submit(self._chunks.pop(work.model), tg)

    def _new_chunk(self, model: str) -> _Chunk:
        self._next_job += 1
        return _Chunk(model, self._next_job - 1)

    def _request(self, work: Work, number: int) -> BatchRequest:
        """The request exactly as an online call sends it; its custom_id says which job and
        which line, so it stands for one (item, model) in one job, never reused."""
        call = self._plan.request(work, work.max_tokens)
        return BatchRequest(f"j{number}-l{work.item.line}", call)

    def _may_submit(self) -> bool:
        """Not stopped, in time, and not at the cap: a provider that billed results past
        their reservations may have spent what the chunks waiting here reserved."""
        return self._control.sending() and not self._funds.budget.reached

    async def _submit(self, chunk: _Chunk, tg: TaskGroup) -> None:
        """Write the chunk's intent, create its job, and follow it; a chunk that may not go
        (stopped, out of time, the log broke) gives its money back and stays pending."""
        if not chunk.requests:
            return
        control = self._control
        await control.wait_unpaused()
        if not self._may_submit() or not await self._slots.wait(control):
            self._release(chunk)
            return
        token = job_token(self._batch.run_id, chunk.number)
        now = time.time()
        intent = log.BatchRecord(
            token, chunk.model, "submitting", now, now, items=tuple(chunk.entries)
        )
        if (
            not self._may_submit()  # checked again: waiting for a slot took time
            or not await self._write_now(log.batch_record(intent, with_items=True))
            or control.failure is not None
        ):
            self._slots.give_back()
            self._release(chunk)
            return
        status = await self._create(self._batch.apis[chunk.model], chunk, token, now)
        if status is None:
            unsent = replace(intent, state="unsent", t=time.time(), closed=True)
            self._note(log.batch_record(unsent))
            self._slots.give_back()
            self._release(chunk)
            return
        self._batch.job_ids.add(status.job_id)
        job = self._tracker.seen(intent, status, logged=False)
        # Fsynced now, not with the next group: after a kill, an intent without its id is
        # found again among jobs the log does not know, so this one must be known.
        await self._write_now(log.batch_record(job))
        self._funds.batched(sum(entry.units for entry in chunk.entries))
        self._control.emit(BatchJobSubmitted(self._tracker.view(job), tuple(chunk.ids)))
        self._tracker.cost_changed()
        chunk.requests.clear()  # the job holds them now: only the entries stay
        tg.start_soon(self._follow, job)

    async def _create(
        self, api: BatchApi, chunk: _Chunk, token: str, since: float
    ) -> JobStatus | None:
        """The job created from ``chunk``, or None when none could be. After a failed try the
        provider is asked for a job with the token first: an answer lost on its way back
        must not create the job twice."""
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                return await api.submit(chunk.requests, token=token)
            except ProviderError as exc:
                found = await _find(api, token, since, len(chunk.requests), self._batch.job_ids)
                if found is not None:
                    return found
                if not exc.retryable or attempt == SUBMIT_ATTEMPTS:
                    self._control.fail(f"{chunk.model}: batch job not created: {exc.message}")
                    return None
                delay = backoff_delay(
                    attempt, settings=self._config.retry, retry_after=exc.retry_after
                )
                with self._control.waiting() as wait:
                    await anyio.sleep(delay)
                if wait.cancelled_caught:
                    return None
        return None

    async def _follow(self, job: log.BatchRecord) -> None:
        try:
            if self._batch.detach:
                self._tracker.leave(job)
            else:
                await self._tracker.follow(job)
        finally:
            self._slots.give_back()

    def _release(self, chunk: _Chunk) -> None:
        """A chunk that did not go out gives its money back; its items stay pending."""
        for entry in chunk.entries:
            self._funds.settle(entry.units, 0.0, sent=False)
            self._tracker.unanswered(chunk.model, entry.id)


_END: Any = object()


async def _next(stream: MemoryObjectReceiveStream[Work | None]) -> Work | None:
    """The next item, without a trip through the event loop when one is waiting (anyio's
    ``receive`` always yields first: at a hundred thousand items that is most of the cost);
    ``_END`` once the dispatcher is done."""
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        try:
            return await stream.receive()
        except anyio.EndOfStream:
            return _END  # type: ignore[no-any-return]
    except anyio.EndOfStream:
        return _END  # type: ignore[no-any-return]


async def _find(
    api: BatchApi, token: str, since: float, count: int, known: Collection[str]
) -> JobStatus | None:
    try:
        found = await candidates(api, token, since, count, known)
    except ProviderError:
        return None
    return found[0] if len(found) == 1 else None
