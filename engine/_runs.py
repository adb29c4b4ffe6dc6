"""Past runs: list them, and export one from its log.

Listing reads each run's ``summary.json`` (written when an execution ends) and
rescans the log only when the log is newer than the summary (a run that was
killed), so ``batchdeck runs`` stays quick with many large runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from engine import log
from engine._config import RunConfig
from engine._errors import BatchdeckError
from engine._export import ExportFormat, StatusFilter, csv_columns, select, write_results
from engine._paths import runs_root
from engine._results import ItemResult
from engine._run import CONFIG_NAME, LOG_NAME, SUMMARY_NAME, Run


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    run_dir: Path
    started: str
    input: str
    models: tuple[str, ...]
    done: int
    total: int | None
    ok: int
    failed: int
    skipped: int
    cost_usd: float
    state: str
    """finished, stopped, capped, failed, or interrupted (killed: no end record)."""

    @property
    def resumable(self) -> bool:
        return self.state != "finished"


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every run under ``root`` (default: the runs root), newest first; broken dirs are left out."""
    root = runs_root() if root is None else root
    if not root.is_dir():
        return []
    runs = []
    for run_dir in root.iterdir():
        try:
            summary = summarize(run_dir)
        except (BatchdeckError, OSError, orjson.JSONDecodeError):
            continue
        if summary is not None:
            runs.append(summary)
    return sorted(runs, key=lambda r: r.started, reverse=True)


def summarize(run_dir: Path) -> RunSummary | None:
    log_path, config_path = run_dir / LOG_NAME, run_dir / CONFIG_NAME
    if not (log_path.is_file() and config_path.is_file()):
        return None
    config = RunConfig.from_json(config_path.read_bytes(), str(config_path))
    summary_path = run_dir / SUMMARY_NAME
    cached: dict[str, Any] | None = None
    header: Mapping[str, Any]
    if summary_path.is_file() and summary_path.stat().st_mtime_ns >= log_path.stat().st_mtime_ns:
        cached = orjson.loads(summary_path.read_bytes())
    if cached is not None:
        ok, failed, skipped = cached["ok"], cached["failed"], cached["skipped"]
        cost, state = cached["cost_usd"], cached["state"]
        remaining = cached.get("remaining")
        header = next(log.read_records(log_path), {})
    else:
        scanned = log.scan(log_path)
        ok, failed, skipped, cost = scanned.ok, scanned.failed, scanned.skipped, scanned.cost_usd
        state, remaining, header = scanned.run_state, None, scanned.header or {}
    done = ok + failed + skipped
    return RunSummary(
        run_id=run_dir.name,
        run_dir=run_dir,
        started=_when(header.get("t")),
        input=config.input,
        models=config.models,
        done=done,
        total=None if remaining is None else done + remaining,
        ok=ok,
        failed=failed,
        skipped=skipped,
        cost_usd=cost,
        state=state,
    )


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, (int, float)):
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def load_results(run: Run) -> Iterator[ItemResult]:
    """The latest terminal result of every (item, model) pair, in first-seen order."""
    return log.iter_results(run.log_path)


FIND_CHUNK = 8 << 20


def find_result(run: Run, model: str, item_id: str) -> ItemResult | None:
    """The latest result of one (model, id) pair, found by a byte search of the log.

    Result lines begin with their ``head`` (model, id, ...), so the search looks for
    those bytes and decodes only the lines that hold them: a fraction of a second on
    a million-record log, where decoding every record takes several.
    """
    needle = b'"head":[' + orjson.dumps(model) + b"," + orjson.dumps(item_id) + b","
    found: bytes | None = None
    carry = b""
    with run.log_path.open("rb") as handle:
        while chunk := handle.read(FIND_CHUNK):
            block = carry + chunk
            cut = block.rfind(b"\n") + 1
            block, carry = block[:cut], block[cut:]
            at = block.rfind(needle)
            if at >= 0:
                start = block.rfind(b"\n", 0, at) + 1
                found = block[start : block.index(b"\n", at)]
    if found is None or not log.is_valid(found):
        return None
    return log.result_from_record(log.decode(found))


def export_run(run: Run, stream: IO[str], fmt: ExportFormat, status: StatusFilter = "all") -> int:
    """Write the run's results; returns the number of rows."""
    schema = run.config.output_schema
    columns = None
    if fmt == "csv":
        names = (list(r.fields) for r in select(load_results(run), status))
        parsed = list((schema or {}).get("properties", {}))
        if not parsed:
            parsed = _parsed_names(select(load_results(run), status))
        columns = csv_columns(names, parsed)
    return write_results(select(load_results(run), status), stream, fmt, columns=columns)


def _parsed_names(results: Iterator[ItemResult]) -> list[str]:
    seen: dict[str, None] = {}
    for result in results:
        if isinstance(result.parsed, dict):
            seen.update(dict.fromkeys(result.parsed))
    return list(seen)
