"""A past run read back from its log as the events it published, a page at a time.

The events are the engine's whole protocol: a subscriber that sees a run from
``RunStarted`` to ``RunFinished`` can draw all of it, so a past run is shown by
publishing what its log holds the way its executions did: ``RunStarted``
(state ``replaying``), every result record in file order as ``ItemFinished``
(a pair retried later appears again and the later record wins, as it did
live; every record's cost is counted, as it was spent), a ``CostUpdated``
after each page, and finally the run's outcome as ``RunFinished``. A resume
asked to replay (``Run.execute(replay=True)``) publishes the same pages before
it goes on, so the app never reads the log itself.

Paged, because decoding a million-record log takes seconds: a page of
``PAGE_RECORDS`` records is read in a worker thread and published, then the
next, so the first rows show at once and the event loop stays free between
pages. The outcome comes from ``summary.json`` when it is newer than the log
(an execution that ended wrote it; it holds the total), else from a scan of
the log (a killed run, whose total is unknown: ``remaining`` is then 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Final, get_args

import anyio

from engine import _summary as summary
from engine import log
from engine._events import (
    CostUpdated,
    Event,
    FinalState,
    ItemFinished,
    ItemsCounted,
    RunFinished,
    RunStarted,
)
from engine._paths import LOG_NAME
from engine._results import ItemResult

PAGE_RECORDS: Final = 2048
"""Log records read and published per hop to the reader thread."""

_FINAL_STATES: Final[dict[str, FinalState]] = {state: state for state in get_args(FinalState)}

Emit = Callable[[Event], None]


async def publish_results(log_path: Path, emit: Emit, cap: float | None) -> None:
    """Publish the log's result records as ``ItemFinished``, page by page, in file order."""
    records = log.read_records(log_path)  # its file closes when it is dropped, even early
    spent = 0.0
    while page := await anyio.to_thread.run_sync(_next_page, records):
        for result in page:
            spent += result.cost_usd
            emit(ItemFinished(result))
        emit(CostUpdated(spent, 0.0, cap))


async def replay_log(
    run_dir: Path, emit: Emit, started: RunStarted, cap: float | None
) -> RunFinished:
    """Publish a past run's events without executing it; returns its ``RunFinished``."""
    log_path = run_dir / LOG_NAME
    outcome = await anyio.to_thread.run_sync(summary.load, run_dir)
    emit(started)
    if outcome is not None:
        done = outcome.ok + outcome.failed + outcome.skipped + outcome.truncated
        emit(ItemsCounted(done + outcome.remaining, 0))
    await publish_results(log_path, emit, cap)
    if outcome is None:
        outcome = _scanned(await anyio.to_thread.run_sync(log.scan, log_path))
    emit(outcome)
    return outcome


def _next_page(records: Iterator[dict[str, Any]]) -> list[ItemResult]:
    """The results among the next PAGE_RECORDS records (lifecycle records are skipped)."""
    return [
        log.result_from_record(record)
        for record in islice(records, PAGE_RECORDS)
        if record.get("k") == "result"
    ]


def _scanned(state: log.LogState) -> RunFinished:
    return RunFinished(
        state=state.outcome,
        ok=state.ok,
        failed=state.failed,
        skipped=state.skipped,
        truncated=state.truncated,
        remaining=0,
        cost_usd=state.cost_usd,
        input_tokens=state.input_tokens,
        output_tokens=state.output_tokens,
        elapsed_s=state.elapsed_s,
    )
