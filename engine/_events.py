"""Events the engine publishes while a run goes: small dataclasses, never changed once
published (frozen but for the two made for every call: see ``engine._results``).

Subscribers are plain callables invoked in order, synchronously, on the engine's
event loop. They must return quickly (append to a buffer, bump a counter): the
TUI folds them into its model and repaints at its own rate; the CLI prints on
a timer. This keeps delivery ordered and costs the dispatcher ~1 us per event
instead of a stream hop per subscriber.

``ItemFinished`` is published only after the item's terminal record is in the
log (written, and fsynced under ``durability="fsync"``), so whatever a
subscriber saw survives a crash.

These events are the whole protocol: a past run is shown by publishing its
log as the same events (``Run.replay``, see ``_replay``), so a subscriber never
needs to read the log itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from engine._results import ErrorInfo, ItemResult
from engine._steps import split_lane

LiveState = Literal["replaying", "running", "paused", "stopping"]
"""A run being published now: ``replaying`` while a past run's results are read back
from its log (opening it, or before a resume goes on), then what an execution is doing."""
FinalState = Literal["finished", "stopped", "capped", "failed"]
"""How an execution ended (``RunFinished.state``, the log's finish record, ``summary.json``)."""
RunState = LiveState | FinalState
CapKind = Literal["max_cost", "max_item_cost", "time_limit", "max_items"]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Publishing began: ``state`` is ``replaying`` for the log's results, else ``running``."""

    run_id: str
    run_dir: str
    models: tuple[str, ...]
    resumed: bool
    already_done: int
    """Pairs the log already held a terminal record for that this stream did not publish as
    ``ItemFinished``: 0 for a fresh run, and for a resume asked to replay its log first."""
    state: LiveState = "running"
    elapsed_before_s: float = 0.0
    """Time the run's earlier executions took, so a resumed run's clock goes on from it (0
    for a new run, and for a replay, whose ``RunFinished`` carries all of it)."""


@dataclass(frozen=True, slots=True)
class ItemsCounted:
    """The reader reached the end of the input: ``total`` (item, model) pairs exist."""

    total: int
    invalid: int


@dataclass(slots=True)
class ItemStarted:
    id: str
    model: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ItemRetrying:
    id: str
    model: str
    attempt: int
    """The attempt that just failed (1-based)."""
    error: ErrorInfo
    delay_s: float


@dataclass(slots=True)
class ItemFinished:
    result: ItemResult


@dataclass(frozen=True, slots=True)
class CostUpdated:
    spent_usd: float
    reserved_usd: float
    """Worst-case cost held by calls in flight, by items handed to a worker that have
    not been sent yet (waiting at the pause gate or for their pace), and by requests in
    batch jobs."""
    cap_usd: float | None
    in_flight_usd: float = 0.0
    """The part of ``reserved_usd`` held by calls sent and not yet answered."""
    calls_in_flight: int = 0
    """Calls sent and not yet answered: never more than the workers (but while fewer are
    asked for, until the extra ones finish their call)."""
    batch_usd: float = 0.0
    """The part of ``reserved_usd`` held by requests in batch jobs at their provider (at
    the batch price), until their results settle it."""


@dataclass(frozen=True, slots=True)
class RateLimitUpdated:
    model: str
    rpm_limit: float | None
    tpm_limit: float | None
    rpm_measured: float
    tpm_measured: float
    throttled: int
    """429/529 answers so far for this model."""
    backoff_s: float
    """Seconds until this model may send again (0 when not backing off)."""


@dataclass(frozen=True, slots=True)
class WorkersChanged:
    workers: int


@dataclass(frozen=True, slots=True)
class RunPaused:
    pass


@dataclass(frozen=True, slots=True)
class RunResumed:
    pass


@dataclass(frozen=True, slots=True)
class RunStopping:
    """``stop`` or ``abort`` was asked: nothing more is sent; ``RunFinished`` follows."""


@dataclass(frozen=True, slots=True)
class CapReached:
    cap: CapKind
    message: str


@dataclass(frozen=True, slots=True)
class LogRecovered:
    """Opening the log found a torn or garbage tail and moved it aside."""

    bad_bytes: int
    side_file: str


@dataclass(frozen=True, slots=True)
class InputWarning:
    """Something about the input worth one line (e.g. items without ids were numbered)."""

    message: str


@dataclass(frozen=True, slots=True)
class CacheWarning:
    """The response cache cannot be used (a damaged or unreadable file): the run goes on
    without it."""

    message: str


@dataclass(frozen=True, slots=True)
class RunFailed:
    """The run stopped on its own: every call fails (bad key, bad model) or the log broke."""

    message: str


BATCH_ENDED_STATES: frozenset[str] = frozenset({"ended", "failed", "expired", "cancelled"})
"""States of a batch job that will change no more: its results are all there is."""


@dataclass(frozen=True, slots=True)
class BatchJob:
    """One job of a provider's batch API as last seen (see ``engine.log.BatchRecord``)."""

    model: str
    job_id: str
    state: str
    """``submitting``, ``running``, ``ended``, ``failed``, ``expired``, ``cancelling``,
    ``cancelled``."""
    requests: int
    succeeded: int
    errored: int
    processing: int
    submitted_at: float
    """Unix seconds."""
    expires_at: float | None

    @property
    def provider(self) -> str:
        """``openai``, of a job of ``openai:gpt-4o-mini`` or of a step's ``classify/openai:...``."""
        return split_lane(self.model)[1].partition(":")[0]

    @property
    def ended(self) -> bool:
        return self.state in BATCH_ENDED_STATES


@dataclass(frozen=True, slots=True)
class BatchJobSubmitted:
    """A batch job was created at its provider (or found again after a restart); its items
    are ``submitted`` until its results arrive as ``ItemFinished``."""

    job: BatchJob
    ids: tuple[str, ...] = ()
    """The ids of the items it holds that have no result yet (for a job re-attached: those
    the log holds no result for)."""


@dataclass(frozen=True, slots=True)
class BatchJobProgressed:
    """A look at a job found it changed (state or counts)."""

    job: BatchJob


@dataclass(frozen=True, slots=True)
class BatchJobEnded:
    """A job ended and every result it gave is in the log; ``unfinished`` of its requests
    gave none (expired or cancelled): those items stay pending, for resume."""

    job: BatchJob
    unfinished: int


@dataclass(frozen=True, slots=True)
class RunFinished:
    state: FinalState
    ok: int
    failed: int
    skipped: int
    remaining: int
    """Pairs never given a terminal record (stopped, capped or interrupted): resumable."""
    cost_usd: float
    input_tokens: int
    output_tokens: int
    elapsed_s: float
    """Time this execution took; for a replayed run, what all its executions took."""
    truncated: int = 0
    """Answers cut off at the output limit: paid for, kept, and not counted as ok."""
    overspent_usd: float = 0.0
    """How far spending went past ``--max-cost``: only a provider billing past the limits
    of a request can take it there (by at most the calls then in flight)."""
    usage_unknown: int = 0
    """Results of this execution charged their whole reservation: an answer's usage was
    missing or could not be believed."""
    unpriced: tuple[str, ...] = ()
    """Models with no known price: their cost is unknown, not $0."""
    batch_saved_usd: float = 0.0
    """What this execution's batch results would have cost online, less what they cost."""
    batch_jobs_left: int = 0
    """Batch jobs still running at the provider when the execution ended (detached,
    stopped or out of time): ``resume`` fetches their results."""
    cached: int = 0
    """Results of this execution answered from the response cache, at no cost."""
    saved_usd: float = 0.0
    """What those answers' calls would have cost."""
    cached_tokens: int = 0
    """Input tokens the providers read from their prompt caches."""
    cache_saved_usd: float = 0.0
    """What the providers' prompt caches saved on this execution's results."""


Event = (
    RunStarted
    | ItemsCounted
    | ItemStarted
    | ItemRetrying
    | ItemFinished
    | CostUpdated
    | RateLimitUpdated
    | WorkersChanged
    | RunPaused
    | RunResumed
    | RunStopping
    | CapReached
    | LogRecovered
    | InputWarning
    | CacheWarning
    | RunFailed
    | RunFinished
    | BatchJobSubmitted
    | BatchJobProgressed
    | BatchJobEnded
)
Subscriber = Callable[[Event], None]
