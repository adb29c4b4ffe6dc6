"""Everything the run screen shows, folded from engine events into plain Python state.

``RunModel`` knows nothing of Textual: the screen drains an ``EventBuffer`` on
a 10-20 Hz timer, hands the batch to ``apply_all`` and repaints the widgets
whose inputs moved (``version`` and ``store.version`` tell them). ``apply``
runs for every engine event, ~10,000 a second on a fast run, so each handler
does a dict lookup and a few attribute updates, never a scan, a format or a
clock read (rare events excepted). Anything derived (ETA, percentages, rates)
is computed when a widget asks, a few times a second.

Time comes from an injectable ``clock`` read only by rare events and by
``tick()``, once per drain; views read the last tick's time, so one frame is
consistent and a test with a frozen clock gets the same screen every time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from engine import (
    BatchJob,
    BatchJobEnded,
    BatchJobProgressed,
    BatchJobSubmitted,
    CacheWarning,
    CapReached,
    CostUpdated,
    Event,
    InputWarning,
    ItemFinished,
    ItemRetrying,
    ItemsCounted,
    ItemStarted,
    LogRecovered,
    RateLimitUpdated,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    RunState,
    RunStopping,
    WorkersChanged,
)
from tui.model._series import RateSeries
from tui.model._store import FINISHED, ItemStore, RowStatus

ModelState = Literal["idle"] | RunState
"""``idle`` until ``RunStarted``; then the engine's own state."""

Severity = Literal["information", "warning", "error"]

_STATUSES: tuple[RowStatus, ...] = get_args(RowStatus)


def _ignore(event: object) -> None:
    """For event types newer than this model: the UI shows less rather than crash."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user must be told once (a cap reached, a torn log, a failed run)."""

    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The last rate-limit report for one model and when it arrived (model clock)."""

    update: RateLimitUpdated
    received_at: float

    def backoff_left(self, now: float) -> float:
        return max(0.0, self.update.backoff_s - (now - self.received_at))


class ModelStats:
    """Running totals for one model; ``counts`` is rows per status."""

    __slots__ = (
        "cache_saved_usd",
        "cached_tokens",
        "cost_usd",
        "counts",
        "input_tokens",
        "latency_ms_total",
        "model",
        "output_tokens",
        "timed",
        "unpriced",
    )

    def __init__(self, model: str) -> None:
        self.model = model
        self.counts: dict[RowStatus, int] = dict.fromkeys(_STATUSES, 0)
        self.cost_usd = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.latency_ms_total = 0.0
        self.timed = 0
        self.unpriced = False
        """The model has no known price: its cost is unknown, not $0."""
        self.cached_tokens = 0
        """Input tokens the provider read from its prompt cache."""
        self.cache_saved_usd = 0.0
        """What that cache saved, at the model's prices."""

    @property
    def done(self) -> int:
        return sum(self.counts[status] for status in FINISHED)

    @property
    def active(self) -> int:
        return self.counts["running"] + self.counts["retrying"]

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.timed if self.timed else None


class RunModel:
    """The state of one run as the TUI shows it; feed it with ``apply_all(buffer.drain())``."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        history_s: int = 120,
        eta_window_s: int = 10,
    ) -> None:
        self._clock = clock
        self._eta_window_s = eta_window_s
        self.store = ItemStore()
        self.version = 0
        """Bumped by every event and every new sparkline point: repaint panels when it moves."""
        self.now = clock()
        """The model's time as of the last ``tick()``: what every derived figure uses."""

        self.state: ModelState = "idle"
        self.run_id: str | None = None
        self.run_dir: str | None = None
        self.models: tuple[str, ...] = ()
        self.resumed = False
        self.already_done = 0
        self.total: int | None = None
        """(item, model) pairs in the input, once the reader has counted them."""
        self.invalid = 0
        self.workers: int | None = None

        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        """Held by calls in flight and by items a worker holds that are not sent yet."""
        self.in_flight_usd = 0.0
        """Held by calls sent and not yet answered."""
        self.batch_usd = 0.0
        """Held by requests in provider batch jobs (at the batch price)."""
        self.calls_in_flight: int | None = None
        """Calls sent and not yet answered, as the engine last said (None before it did):
        rows still ``running`` may be answered and waiting for the log's next write."""
        self.cap_usd: float | None = None
        self.cost_usd = 0.0
        """Cost of the items finished while this model listened."""
        self.unpriced: set[str] = set()
        """Models with no known price among those results: the cost is partly unknown."""
        self.input_tokens = 0
        self.output_tokens = 0
        self.finished_items = 0
        """Terminal results received, retries of one pair included: what throughput counts."""
        self.cached = 0
        """Of those, answers the response cache gave, at no cost."""
        self.saved_usd = 0.0
        """What those answers' calls would have cost."""

        self.counts: dict[RowStatus, int] = dict.fromkeys(_STATUSES, 0)
        self.per_model: dict[str, ModelStats] = {}
        self.rate_limits: dict[str, RateLimitState] = {}
        self.batch_jobs: dict[str, BatchJob] = {}
        """Provider batch jobs by job id, as last reported."""
        self._job_items: dict[str, tuple[str, tuple[str, ...]]] = {}
        """(model, item ids) of each job that has not ended: shown ``submitted``."""
        self.caps_reached: list[CapReached] = []
        self.failure: str | None = None
        self.elsewhere: str | None = None
        """Who executes this run while the app shows its log (another process: pid, host,
        since when), or None: the log's outcome is then not how the run stands."""
        self.finished: RunFinished | None = None
        self._notices: list[Notice] = []

        self.throughput = RateSeries(size=history_s)
        """Items finished per second."""
        self.cost_rate = RateSeries(size=history_s, scale=60.0)
        """Dollars per minute, one point per second."""
        self._started_at: float | None = None
        self.elapsed_before_s = 0.0
        """Time the run's earlier executions took (a resumed run's clock goes on from it)."""

        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            RunStarted: self._on_run_started,
            ItemsCounted: self._on_items_counted,
            ItemStarted: self._on_item_started,
            ItemRetrying: self._on_item_retrying,
            ItemFinished: self._on_item_finished,
            CostUpdated: self._on_cost_updated,
            RateLimitUpdated: self._on_rate_limit_updated,
            WorkersChanged: self._on_workers_changed,
            RunPaused: self._on_run_paused,
            RunResumed: self._on_run_resumed,
            RunStopping: self._on_run_stopping,
            CapReached: self._on_cap_reached,
            LogRecovered: self._on_log_recovered,
            InputWarning: self._on_input_warning,
            CacheWarning: self._on_input_warning,
            RunFailed: self._on_run_failed,
            RunFinished: self._on_run_finished,
            BatchJobSubmitted: self._on_batch_job_submitted,
            BatchJobProgressed: self._on_batch_job,
            BatchJobEnded: self._on_batch_job_ended,
        }

    # -- feeding -----------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event in; call ``tick()`` before reading time-derived figures."""
        self._handlers.get(type(event), _ignore)(event)
        self.version += 1

    def apply_all(self, events: Iterable[Event]) -> None:
        """Fold a drained batch in, then ``tick()``: what the screen's timer calls."""
        handlers = self._handlers
        applied = 0
        for event in events:
            handlers.get(type(event), _ignore)(event)
            applied += 1
        self.version += applied
        self.tick()

    def tick(self) -> None:
        """Read the clock once and close any whole second of the sparklines."""
        self.now = self._clock()
        if self.finished is None and self.state != "replaying":  # a past run has no pace
            added = self.throughput.sample(self.now, self.finished_items)
            added |= self.cost_rate.sample(self.now, self.cost_usd)
            if added:
                self.version += 1

    def cancel_asked(self, job_ids: Iterable[str]) -> None:
        """The app asked these jobs' provider to cancel them: they show ``cancelling`` until
        a resume looks at them (the run that would have has stopped)."""
        for job_id in job_ids:
            job = self.batch_jobs.get(job_id)
            if job is not None and not job.ended:
                self.batch_jobs[job_id] = replace(job, state="cancelling")
                self.version += 1

    def drain_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    # -- derived figures ---------------------------------------------------------

    @property
    def done(self) -> int:
        """Pairs with a terminal record, those found in the log on resume included."""
        return self.already_done + sum(self.counts[status] for status in FINISHED)

    @property
    def active(self) -> int:
        return self.counts["running"] + self.counts["retrying"]

    @property
    def open_batch_jobs(self) -> int:
        """Provider batch jobs submitted and not ended (as far as this model heard)."""
        return sum(not job.ended for job in self.batch_jobs.values())

    @property
    def remaining(self) -> int | None:
        """Pairs without a terminal record yet (in flight included); None until counted."""
        if self.finished is not None:
            return self.finished.remaining
        return None if self.total is None else max(0, self.total - self.done)

    @property
    def elapsed_s(self) -> float:
        """Time the run has taken, across every execution that ran it."""
        if self.finished is not None:
            return self.elapsed_before_s + self.finished.elapsed_s
        if self._started_at is None:
            return 0.0
        return self.elapsed_before_s + max(0.0, self.now - self._started_at)

    @property
    def running(self) -> int:
        """Calls in flight: the engine's own count while a run goes (a row stays ``running``
        from its call's start until the log writes its result), none once it ended."""
        if self.finished is not None:
            return 0
        in_flight = self.calls_in_flight
        return self.counts["running"] if in_flight is None else in_flight

    @property
    def items_per_s(self) -> float | None:
        """Recent throughput: the mean of the last few sparkline points."""
        return self.throughput.recent(self._eta_window_s)

    @property
    def cost_per_min(self) -> float | None:
        return self.cost_rate.recent(self._eta_window_s)

    @property
    def eta_s(self) -> float | None:
        """Seconds to finish at the recent rate; None when it cannot be told."""
        remaining = self.remaining
        if self.state != "running" or remaining is None:
            return None
        if remaining == 0:
            return 0.0
        rate = self.items_per_s
        if not rate and self.elapsed_s > 0:
            rate = self.finished_items / self.elapsed_s
        return remaining / rate if rate else None

    @property
    def cache_hit_rate(self) -> float | None:
        """The share of finished results the response cache answered; None before any."""
        return self.cached / self.finished_items if self.finished_items else None

    def failure_kinds(self) -> dict[str, int]:
        """Failed and skipped rows per error kind, largest group first."""
        return self.store.kind_counts()

    # -- handlers ----------------------------------------------------------------

    def _add_model(self, model: str) -> ModelStats:
        stats = self.per_model[model] = ModelStats(model)
        return stats

    def _move(self, model: str, old: RowStatus | None, new: RowStatus) -> ModelStats:
        stats = self.per_model.get(model) or self._add_model(model)
        if old != new:
            counts = stats.counts
            if old is not None:
                counts[old] -= 1
                self.counts[old] -= 1
            counts[new] += 1
            self.counts[new] += 1
        return stats

    def _move_many(self, model: str, old: RowStatus | None, new: RowStatus, rows: int) -> None:
        stats = self.per_model.get(model) or self._add_model(model)
        if old is not None:
            stats.counts[old] -= rows
            self.counts[old] -= rows
        stats.counts[new] += rows
        self.counts[new] += rows

    def _on_run_started(self, event: RunStarted) -> None:
        self.now = self._clock()
        self._started_at = self.now
        self.state = event.state
        self.run_id = event.run_id
        self.run_dir = event.run_dir
        self.models = event.models
        self.store.set_lanes(event.models)
        self.resumed = event.resumed
        self.elapsed_before_s = event.elapsed_before_s
        # a retry's model already holds rows for pairs the log had finished
        finished = sum(self.counts[status] for status in FINISHED)
        self.already_done = max(0, event.already_done - finished)
        self.finished = None
        for model in event.models:
            if model not in self.per_model:
                self._add_model(model)
        self.throughput.start(self.now, self.finished_items)
        self.cost_rate.start(self.now, self.cost_usd)

    def _on_items_counted(self, event: ItemsCounted) -> None:
        self.total = event.total
        self.invalid = event.invalid

    def _on_item_started(self, event: ItemStarted) -> None:
        old = self.store.start(event.id, event.model, event.attempt)
        self._move(event.model, old, "running")

    def _on_item_retrying(self, event: ItemRetrying) -> None:
        old = self.store.retrying(event.id, event.model, event.attempt, event.error, event.delay_s)
        self._move(event.model, old, "retrying")

    def _on_item_finished(self, event: ItemFinished) -> None:
        result = event.result
        old = self.store.finish(result)
        stats = self._move(result.model, old, result.status)
        usage = result.usage
        stats.cost_usd += result.cost_usd
        if result.unpriced:
            stats.unpriced = True
            self.unpriced.add(result.model)
        stats.input_tokens += usage.input_tokens
        stats.output_tokens += usage.output_tokens
        stats.cached_tokens += usage.cached_tokens
        stats.cache_saved_usd += result.cache_saved_usd
        if result.latency_ms > 0:
            stats.latency_ms_total += result.latency_ms
            stats.timed += 1
        self.cost_usd += result.cost_usd
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.finished_items += 1
        if result.cached:
            self.cached += 1
            self.saved_usd += result.saved_usd

    def _on_cost_updated(self, event: CostUpdated) -> None:
        self.spent_usd = event.spent_usd
        self.reserved_usd = event.reserved_usd
        self.in_flight_usd = event.in_flight_usd
        self.calls_in_flight = event.calls_in_flight
        self.batch_usd = event.batch_usd
        self.cap_usd = event.cap_usd

    def _on_batch_job(self, event: BatchJobProgressed) -> None:
        self.batch_jobs[event.job.job_id] = event.job

    def _on_batch_job_submitted(self, event: BatchJobSubmitted) -> None:
        job = event.job
        self.batch_jobs[job.job_id] = job
        if not event.ids:
            return
        self._job_items[job.job_id] = (job.model, event.ids)
        before = self.store.submit(event.ids, job.model, f"in batch job {job.job_id}")
        for old, moved in Counter(before).items():
            self._move_many(job.model, old, "submitted", moved)

    def _on_batch_job_ended(self, event: BatchJobEnded) -> None:
        job = event.job
        self.batch_jobs[job.job_id] = job
        model, ids = self._job_items.pop(job.job_id, (job.model, ()))
        if event.unfinished and ids:
            note = f"batch job {job.job_id} {job.state} without it: resume sends it again"
            self._move_many(model, "submitted", "pending", self.store.unsubmit(ids, model, note))

    def _on_rate_limit_updated(self, event: RateLimitUpdated) -> None:
        self.rate_limits[event.model] = RateLimitState(event, self._clock())

    def _on_workers_changed(self, event: WorkersChanged) -> None:
        self.workers = event.workers

    def _on_run_paused(self, event: RunPaused) -> None:
        self.state = "paused"

    def _on_run_resumed(self, event: RunResumed) -> None:
        self.state = "running"

    def _on_run_stopping(self, event: RunStopping) -> None:
        self.state = "stopping"

    def _on_cap_reached(self, event: CapReached) -> None:
        self.caps_reached.append(event)
        self._notices.append(Notice("warning", event.message))

    def _on_log_recovered(self, event: LogRecovered) -> None:
        self._notices.append(
            Notice(
                "warning",
                f"The checkpoint log ended in a torn write: {event.bad_bytes} bytes "
                f"moved to {event.side_file}.",
            )
        )

    def _on_input_warning(self, event: InputWarning | CacheWarning) -> None:
        self._notices.append(Notice("warning", event.message))

    def _on_run_failed(self, event: RunFailed) -> None:
        self.state = "failed"
        self.failure = event.message
        self._notices.append(Notice("error", event.message))

    def _on_run_finished(self, event: RunFinished) -> None:
        self.now = self._clock()
        self.state = event.state
        self.finished = event
