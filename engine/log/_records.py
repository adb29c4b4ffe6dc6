"""The record kinds of the checkpoint log, as plain dicts, and their builders.

Every record is a JSON object whose ``"k"`` names its kind (``?``: left out
when empty)::

    header   first record: {"k","v","t","run_id","config","input"}
             config: SHA-256 of the canonical config; input: {"path","size",
             "mtime_ns","sha256"}, or null for stdin
    session  execution started or resumed: {"k","t","resumed"}
    pause    {"k","t"}
    resume   {"k","t"}
    stop     dispatching stopped early: {"k","t","reason"}
    finish   the run ended: {"k","t","state","spent_usd"?} (a FinalState; all spent so far)
    hold     the most the run may have spent once calls now in flight settle:
             {"k","upto_usd"}; written (with a group) before those calls are sent,
             so after a kill resume counts it as spent (see ``LogState.cost_usd``)
    paid     a paid attempt of an item that is then retried: {"k","head":[model,
             id, attempt, cost_usd, input_tokens, output_tokens, cached_tokens],
             "usage_unknown"?}; the item's result counts it again in its totals
    result   terminal record of one (model, id) pair:
             {"k","head","attempts"?,"latency_ms"?,"output"?,"parsed"?,"finish"?,
              "error"?: {"kind","message"},"attempt_errors"?: [[kind, message]...],
              "simulated"?,"prompt"?,"fields"?,"usage_unknown"?,"unpriced"?,
              "cached"?,"saved_usd"?,"cache_write"?,"cache_saved"?,"reasoning"?,"t"?,
              "max_tokens"?}
             status: ok, truncated (cut off at the output limit; format 2), failed,
             skipped; usage_unknown: an answer's usage could not be believed, and it
             was charged all that was reserved for it; unpriced: the model has no
             price, so cost_usd (0) is unknown; cached: answered from the response
             cache, no call made, and saved_usd what that call would have cost;
             cache_write: input tokens written to the provider's prompt cache;
             cache_saved: what that cache saved (USD, negative when writing cost
             more than reading gave back); reasoning: output tokens spent
             reasoning; t: when it was settled; max_tokens: a retry's raised limit
    batch    a job of a provider's native batch API (see ``BatchRecord``):
             {"k","t","token","model","state","since","job"?,"provider_state"?,
              "counts"?,"expires"?,"closed"?,"items"?: [[custom_id, id, line, units]...]}
             the first record of a token (its intent, with its items) is fsynced
             before the job is submitted; resume reads them into ``LogState.batches``

Result dicts are built by hand, not with ``dataclasses.asdict`` (which deep
copies through a generic path: ~29 us a result here against ~0.7 us): the
engine encodes more than ten thousand of them a second. Fields that are None,
zero or empty are left out to keep a million-record log small; readers
default them back.

A result starts with ``{"k":"result","head":[model, id, line, status,
cost_usd, input_tokens, output_tokens, cached_tokens], ...``: the one unnamed
field, because it is all resume needs and the scanner decodes only that array
(``HEAD_OFFSET``): a short list decodes in about a third of the time of the
same values as named fields, times a million records.

Time fields (``t``) are Unix seconds (float).

A record read back is bound-checked (``result_from_record``, and the scanner's
own checks): a checksum only proves the line is what was written, not that
what was written is sane, and one absurd value (a line 2**40, a cost 1e308, a
token count past 64 bits) must end as ``LogCorrupt``, not a crash later.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

from engine._errors import LogCorrupt
from engine._events import FinalState
from engine._results import ErrorInfo, ItemResult, Usage
from engine.log._format import FORMAT_VERSION

RESULT_START = b'{"k":"result","head":['
"""How the JSON of every result line starts."""
HEAD_OFFSET = 9 + len(RESULT_START) - 1
"""Where a result line's ``head`` array starts: after the checksum, the space and RESULT_START."""

MAX_TOKENS = 1 << 53
"""Most tokens a log may hold or add up to: any more is no real run."""
MAX_USD = 1e9
"""Most dollars a log may hold or add up to."""
MAX_TIME = 1e11
"""Latest Unix time a record may carry (the year 5138)."""
MAX_ATTEMPTS = 1_000_000
_STATUSES = frozenset(("ok", "truncated", "failed", "skipped"))

LifecycleKind = Literal["session", "pause", "resume", "stop", "finish"]
LIFECYCLE_KINDS: frozenset[str] = frozenset({"session", "pause", "resume", "stop", "finish"})

BatchState = Literal[
    "submitting",
    "submitted",
    "running",
    "ended",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
    "unsent",
    "forgotten",
]
"""Where a provider batch job stands in batchdeck's words (``provider_state`` has the
provider's): the provider's states, and ``submitting`` (the intent, before the job is
known), ``unsent`` (no job came of the intent) and ``forgotten`` (its provider no longer
knew it, and the user chose to send its requests again: ``resume --forget-job``)."""
_BATCH_STATES: frozenset[str] = frozenset(get_args(BatchState))


def _now(t: float | None) -> float:
    return time.time() if t is None else t


def header_record(
    run_id: str,
    *,
    config: str,
    input: Mapping[str, Any] | None,
    t: float | None = None,
) -> dict[str, Any]:
    """The first record of a log.

    ``config`` is ``config_fingerprint(...)``; ``input`` is ``input_fingerprint(...)``,
    or None when the input cannot be read twice (stdin).
    """
    return {
        "k": "header",
        "v": FORMAT_VERSION,
        "t": _now(t),
        "run_id": run_id,
        "config": config,
        "input": None if input is None else dict(input),
    }


def session_record(*, resumed: bool, t: float | None = None) -> dict[str, Any]:
    return {"k": "session", "t": _now(t), "resumed": resumed}


def pause_record(*, t: float | None = None) -> dict[str, Any]:
    return {"k": "pause", "t": _now(t)}


def resume_record(*, t: float | None = None) -> dict[str, Any]:
    return {"k": "resume", "t": _now(t)}


def stop_record(reason: str, *, t: float | None = None) -> dict[str, Any]:
    """``reason`` says why dispatching stopped early: ``"interrupt"``, a CapKind, ..."""
    return {"k": "stop", "t": _now(t), "reason": reason}


def finish_record(
    state: FinalState, *, spent_usd: float | None = None, t: float | None = None
) -> dict[str, Any]:
    """``spent_usd``: all the run has spent so far, attempts of items without a result
    (aborted mid-retry) included, which the result records alone cannot tell."""
    record: dict[str, Any] = {"k": "finish", "t": _now(t), "state": state}
    if spent_usd is not None:
        record["spent_usd"] = spent_usd
    return record


def hold_record(upto_usd: float) -> dict[str, Any]:
    return {"k": "hold", "upto_usd": upto_usd}


def paid_record(model: str, id: str, attempt: int, cost_usd: float, usage: Usage) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "k": "paid",
        "head": [
            model, id, attempt, cost_usd,
            usage.input_tokens, usage.output_tokens, usage.cached_tokens,
        ],
    }  # fmt: skip
    if usage.unknown:
        rec["usage_unknown"] = True
    return rec


def result_record(result: ItemResult) -> dict[str, Any]:
    """The log record of a terminal result: ``head`` first (see the module docstring)."""
    usage = result.usage
    rec: dict[str, Any] = {
        "k": "result",
        "head": [
            result.model,
            result.id,
            result.line,
            result.status,
            result.cost_usd,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
        ],
    }
    if result.attempts:
        rec["attempts"] = result.attempts
    if result.latency_ms:
        rec["latency_ms"] = result.latency_ms
    if result.output is not None:
        rec["output"] = result.output
    if result.parsed is not None:
        rec["parsed"] = result.parsed
    if result.finish_reason is not None:
        rec["finish"] = result.finish_reason
    if result.error is not None:
        rec["error"] = {"kind": result.error.kind, "message": result.error.message}
    if result.attempt_errors:
        rec["attempt_errors"] = [[e.kind, e.message] for e in result.attempt_errors]
    if result.simulated:
        rec["simulated"] = True
    if usage.unknown:
        rec["usage_unknown"] = True
    if result.unpriced:
        rec["unpriced"] = True
    if result.prompt_override is not None:
        rec["prompt"] = result.prompt_override
    if result.cached:
        rec["cached"] = True
        rec["saved_usd"] = result.saved_usd
    if usage.cache_write_tokens:
        rec["cache_write"] = usage.cache_write_tokens
    if result.cache_saved_usd:
        rec["cache_saved"] = result.cache_saved_usd
    if usage.reasoning_tokens:
        rec["reasoning"] = usage.reasoning_tokens
    if result.finished_at is not None:
        rec["t"] = result.finished_at
    if result.max_tokens is not None:
        rec["max_tokens"] = result.max_tokens
    if result.fields:
        fields = result.fields  # orjson writes dicts, not other Mappings
        rec["fields"] = fields if type(fields) is dict else dict(fields)
    return rec


def is_bounded(value: object, most: float) -> bool:
    """A real number (not a bool) from 0 to ``most``: false for NaN and infinities."""
    return type(value) in (int, float) and 0 <= value <= most  # type: ignore[operator]


def result_from_record(rec: Mapping[str, Any]) -> ItemResult:
    """The ItemResult a ``result`` record holds; LogCorrupt if anything in it is malformed
    or out of bounds."""
    try:
        model, id, line, status, cost, input_tokens, output_tokens, cached_tokens = rec["head"]
        reasoning = rec.get("reasoning", 0)
        counts = (
            line,
            input_tokens,
            output_tokens,
            cached_tokens,
            reasoning,
            rec.get("attempts", 0),
        )
        finished_at = rec.get("t")
        max_tokens = rec.get("max_tokens")
        if (
            type(model) is not str
            or type(id) is not str
            or status not in _STATUSES
            or not all(type(n) is int and 0 <= n <= MAX_TOKENS for n in counts)
            or counts[-1] > MAX_ATTEMPTS
            or not is_bounded(cost, MAX_USD)
            or not is_bounded(rec.get("latency_ms", 0.0), MAX_TIME)
            or not is_bounded(rec.get("saved_usd", 0.0), MAX_USD)
            or not (finished_at is None or is_bounded(finished_at, MAX_TIME))
            or not (
                max_tokens is None or (type(max_tokens) is int and 0 < max_tokens <= MAX_TOKENS)
            )
            or reasoning > output_tokens
        ):
            raise ValueError("a value out of bounds")
        cache_write, cache_saved = rec.get("cache_write", 0), rec.get("cache_saved", 0.0)
        if not (
            type(cache_write) is int
            and 0 <= cache_write <= input_tokens
            and type(cache_saved) in (int, float)
            and is_bounded(abs(cache_saved), MAX_USD)
        ):
            raise ValueError("a prompt cache figure out of bounds")
        error = rec.get("error")
        return ItemResult(
            id=id,
            model=model,
            status=status,
            line=line,
            fields=rec.get("fields", {}),
            output=rec.get("output"),
            parsed=rec.get("parsed"),
            usage=Usage(
                input_tokens,
                output_tokens,
                cached_tokens,
                rec.get("usage_unknown", False),
                cache_write_tokens=cache_write,
                reasoning_tokens=reasoning,
            ),
            cost_usd=cost,
            latency_ms=rec.get("latency_ms", 0.0),
            attempts=rec.get("attempts", 0),
            error=None if error is None else ErrorInfo(error["kind"], error["message"]),
            attempt_errors=tuple(ErrorInfo(k, m) for k, m in rec.get("attempt_errors", ())),
            finish_reason=rec.get("finish"),
            simulated=rec.get("simulated", False),
            prompt_override=rec.get("prompt"),
            unpriced=rec.get("unpriced", False),
            cached=rec.get("cached", False),
            saved_usd=rec.get("saved_usd", 0.0),
            cache_saved_usd=cache_saved,
            finished_at=finished_at,
            max_tokens=max_tokens,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LogCorrupt(f"a malformed result record ({type(exc).__name__}: {exc})") from None


class BatchEntry(NamedTuple):
    """One request of a batch job."""

    custom_id: str
    id: str
    line: int
    units: int
    """Money reserved for it."""
    cache_key: bytes | None = None
    """Its response-cache key (None: its answers are not cached), so its answer is kept
    under the request that was sent, whatever the run's settings are by the time it ends."""


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One job of a provider's native batch API, as the log knows it (the latest record wins).

    The first record of a job is its intent, written and fsynced before anything is
    sent: it names the job by a client ``token`` the provider keeps (or by the time and
    request count where it keeps none), lists every request's custom_id with the item
    it stands for and the money reserved for it. Later records of the same token add
    the provider's job id and states, and ``closed`` once every result it will ever
    give is in the log (or it never became a job: ``unsent``). The items' outcomes are
    still ``result`` records.
    """

    token: str
    model: str
    state: BatchState
    t: float
    """When this record was written (Unix seconds)."""
    since: float
    """When the intent was written: the job was created after it."""
    job_id: str | None = None
    items: tuple[BatchEntry, ...] = ()
    provider_state: str | None = None
    counts: tuple[int, int, int] = (0, 0, 0)
    """Requests succeeded, errored and still processing, at the last look."""
    expires_at: float | None = None
    closed: bool = False

    @property
    def open(self) -> bool:
        return not self.closed


def batch_record(batch: BatchRecord, *, with_items: bool = False) -> dict[str, Any]:
    """The record of ``batch``; ``with_items`` for its intent (later records leave them out)."""
    rec: dict[str, Any] = {
        "k": "batch",
        "t": batch.t,
        "token": batch.token,
        "model": batch.model,
        "state": batch.state,
        "since": batch.since,
    }
    if batch.job_id is not None:
        rec["job"] = batch.job_id
    if batch.provider_state is not None:
        rec["provider_state"] = batch.provider_state
    if any(batch.counts):
        rec["counts"] = list(batch.counts)
    if batch.expires_at is not None:
        rec["expires"] = batch.expires_at
    if batch.closed:
        rec["closed"] = True
    if with_items:
        rec["items"] = [_entry_record(entry) for entry in batch.items]
    return rec


def batch_from_record(
    rec: Mapping[str, Any], *, previous: BatchRecord | None = None
) -> BatchRecord:
    """The BatchRecord of a ``batch`` record; ``previous`` (the same token's) supplies the
    items and the job id it leaves out. LogCorrupt for a malformed one."""
    try:
        items = rec.get("items")
        state = rec["state"]
        if state not in _BATCH_STATES or not is_bounded(rec["t"], MAX_TIME):
            raise ValueError(f"state {state!r:.40}")
        entries: tuple[BatchEntry, ...]
        if items is None:
            entries = previous.items if previous is not None else ()
        else:
            entries = tuple(_entry(entry) for entry in items)
        job = rec.get("job", previous.job_id if previous is not None else None)
        counts = rec.get("counts", (0, 0, 0))
        return BatchRecord(
            token=str(rec["token"]),
            model=str(rec["model"]),
            state=state,
            t=rec["t"],
            since=rec["since"],
            job_id=None if job is None else str(job),
            items=entries,
            provider_state=rec.get("provider_state"),
            counts=(int(counts[0]), int(counts[1]), int(counts[2])),
            expires_at=rec.get("expires"),
            closed=bool(rec.get("closed", False)),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LogCorrupt(f"a malformed batch record ({type(exc).__name__}: {exc})") from None


def _entry_record(entry: BatchEntry) -> list[Any]:
    custom_id, id, line, units, key = entry
    return [custom_id, id, line, units] if key is None else [custom_id, id, line, units, key.hex()]


def _entry(entry: Any) -> BatchEntry:
    custom_id, id, line, units, *rest = entry
    key = bytes.fromhex(rest[0]) if rest else None
    if (
        len(rest) > 1
        or (key is not None and not 0 < len(key) <= 64)
        or type(custom_id) is not str
        or type(id) is not str
        or type(line) is not int
        or type(units) is not int
        or line < 0
        or not 0 <= units <= MAX_USD * 10**12
    ):
        raise ValueError("a batch entry out of bounds")
    return BatchEntry(custom_id, id, line, units, key)
