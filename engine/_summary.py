"""``summary.json``: a run's outcome saved beside its log when an execution ends.

Listing runs and opening a past run read it instead of scanning a log that may
hold a million records. It is only a cache, the log being the truth: a summary
older than the log, unreadable, or missing a figure is ignored (the caller scans
the log), and one that cannot be written (a full disk) is skipped.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, get_args

import orjson

from engine._atomic import write_atomic
from engine._events import FinalState, RunFinished
from engine._paths import LOG_NAME, SUMMARY_NAME

_FINAL_STATES: Final[frozenset[str]] = frozenset(get_args(FinalState))


def save(run_dir: Path, finished: RunFinished, elapsed_s: float) -> None:
    """``elapsed_s``: what all the run's executions took, this one included (a past run
    opened from History shows it)."""
    summary = {
        "state": finished.state,
        "ok": finished.ok,
        "failed": finished.failed,
        "skipped": finished.skipped,
        "truncated": finished.truncated,
        "remaining": finished.remaining,
        "cost_usd": finished.cost_usd,
        "input_tokens": finished.input_tokens,
        "output_tokens": finished.output_tokens,
        "elapsed_s": elapsed_s,
        "batch_jobs_left": finished.batch_jobs_left,
        "updated": datetime.now(UTC).isoformat(),
    }
    with suppress(OSError):  # a full disk: the summary is a cache, the log is the truth
        write_atomic(run_dir / SUMMARY_NAME, orjson.dumps(summary))


def load(run_dir: Path) -> RunFinished | None:
    """The outcome the run's summary holds, if it is as new as its log and readable."""
    path = run_dir / SUMMARY_NAME
    try:
        if path.stat().st_mtime_ns < (run_dir / LOG_NAME).stat().st_mtime_ns:
            return None
        saved = orjson.loads(path.read_bytes())
        if saved["state"] not in _FINAL_STATES:
            return None
        return RunFinished(
            state=saved["state"],
            ok=int(saved["ok"]),
            failed=int(saved["failed"]),
            skipped=int(saved["skipped"]),
            truncated=int(saved.get("truncated", 0)),
            remaining=int(saved["remaining"]),
            cost_usd=float(saved["cost_usd"]),
            input_tokens=int(saved["input_tokens"]),
            output_tokens=int(saved["output_tokens"]),
            elapsed_s=float(saved.get("elapsed_s", 0.0)),
            batch_jobs_left=int(saved.get("batch_jobs_left", 0)),
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
