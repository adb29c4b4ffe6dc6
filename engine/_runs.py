"""Past runs: list them, and export one from its log.

Listing reads each run's ``summary.json`` (written when an execution ends) and
rescans the log only when the log is newer than the summary (a run that was
killed) or the summary cannot be read (it is a cache; the log is the truth),
so ``batchdeck runs`` stays quick with many large runs. A run whose log or
config cannot be read is listed as ``damaged`` with the reason, never left
out; a run another process is executing says so (``holder``).

An export to a file is refused if it would land on the run's input, its log or
anything in a run dir, and it goes through a temp file renamed into place, as
private as the log it comes from (the umask may narrow it further).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from engine import _summary as summary
from engine import log
from engine._compare import StepScores, compare
from engine._config import RunConfig
from engine._errors import BatchdeckError, ConfigError
from engine._events import RunFinished
from engine._export import (
    ALL_RESULTS,
    ExportChoice,
    ExportFormat,
    PromptOf,
    ResultWriter,
    RowOptions,
    StatusFilter,
    output_bytes,
    select,
    table_columns,
    write_dict_rows,
    write_parquet,
    write_parquet_rows,
)
from engine._item_rows import (
    ItemRow,
    flat_columns,
    flat_row,
    group_items,
    nested_row,
    parsed_names,
)
from engine._lanes import lane_keys
from engine._lock import Holder, holder
from engine._paths import CONFIG_NAME, EXPORTS_NAME, LOG_NAME, refuse_run_files, runs_root
from engine._results import ItemResult
from engine._run import Run
from engine._template import PromptTemplate, default_template_for, render_item


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
    state: log.LogRunState | Literal["damaged"]
    """How its last execution ended (a FinalState), ``interrupted`` (killed: no end
    record), ``paused`` (killed while paused), ``new`` (never executed), or ``damaged``."""
    holder: Holder | None = None
    """The process executing the run now (this one included), or None."""
    problem: str | None = None
    """Why a damaged run cannot be read."""
    batch_jobs: int = 0
    """Provider batch jobs the run left running at their provider: resuming it fetches
    their results."""

    @property
    def resumable(self) -> bool:
        return self.state not in ("finished", "damaged") and self.holder is None


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every run under ``root`` (default: the runs root), newest first; damaged ones too."""
    root = runs_root() if root is None else root
    if not root.is_dir():
        return []
    runs = [summary for run_dir in root.iterdir() if (summary := summarize(run_dir)) is not None]
    return sorted(runs, key=lambda r: r.started, reverse=True)


def summarize(run_dir: Path) -> RunSummary | None:
    """The run in ``run_dir`` (``damaged`` with the reason if it cannot be read), or None
    when the dir holds no run at all."""
    log_path, config_path = run_dir / LOG_NAME, run_dir / CONFIG_NAME
    if not run_dir.is_dir() or not (log_path.exists() or config_path.exists()):
        return None
    try:
        return _read_summary(run_dir)
    except (BatchdeckError, OSError, ValueError, KeyError, TypeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, FileNotFoundError):
            problem = f"no {Path(exc.filename).name}"
        return RunSummary(
            run_id=run_dir.name,
            run_dir=run_dir,
            started="",
            input="",
            models=(),
            done=0,
            total=None,
            ok=0,
            failed=0,
            skipped=0,
            cost_usd=0.0,
            state="damaged",
            holder=holder(run_dir),
            problem=problem.splitlines()[0] if problem else type(exc).__name__,
        )


def _read_summary(run_dir: Path) -> RunSummary:
    log_path, config_path = run_dir / LOG_NAME, run_dir / CONFIG_NAME
    config = RunConfig.from_json(config_path.read_bytes(), str(config_path))
    log_path.stat()  # a run without its log is damaged, whatever its summary says
    cached = summary.load(run_dir)
    header: Mapping[str, Any]
    remaining: int | None
    state: log.LogRunState
    if cached is not None:
        ok, failed, skipped = cached.ok, cached.failed, cached.skipped
        truncated = cached.truncated
        cost, state, remaining = cached.cost_usd, cached.state, cached.remaining
        batch_jobs = cached.batch_jobs_left
        header = next(log.read_records(log_path), {})
    else:
        scanned = log.scan(log_path)
        ok, failed, skipped, cost = scanned.ok, scanned.failed, scanned.skipped, scanned.cost_usd
        truncated = scanned.truncated
        state, remaining, header = scanned.run_state, None, scanned.header or {}
        batch_jobs = sum(job.open for job in scanned.batches.values())
    done = ok + failed + skipped + truncated
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
        holder=holder(run_dir),
        batch_jobs=batch_jobs,
    )


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, (int, float)):
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def load_results(run: Run) -> Iterator[ItemResult]:
    """The latest terminal result of every (item, model) pair, in first-seen order."""
    return log.iter_results(run.log_path)


FIND_CHUNK = 8 << 20


def next_steps(run_id: str, finished: RunFinished) -> str:
    """What a user can do with a run that just ended, as the commands to type: resume it
    (when anything is left) and export it. The CLI prints it after a run; the app on quitting."""
    export = f"export: batchdeck export {run_id}"
    if finished.state == "finished" and not finished.remaining:
        return export
    return f"resume: batchdeck resume {run_id}  ·  {export}"


def find_result(run: Run, model: str, item_id: str) -> ItemResult | None:
    """The latest result of one (model, id) pair (see ``find_results``)."""
    found = find_results(run, model, item_id, latest_only=True)
    return found[-1] if found else None


def find_results(
    run: Run, model: str, item_id: str, *, latest_only: bool = False
) -> list[ItemResult]:
    """Every result record of one (model, id) pair, oldest first: a pair retried after it
    failed has one per execution that ran it, each with its own attempts.

    Result lines begin with their ``head`` (model, id, ...), so the search looks for
    those bytes and decodes only the lines that hold them: a fraction of a second on
    a million-record log, where decoding every record takes several.
    """
    needle = b'"head":[' + orjson.dumps(model) + b"," + orjson.dumps(item_id) + b","
    found: list[bytes] = []
    carry = b""
    with run.log_path.open("rb") as handle:
        while chunk := handle.read(FIND_CHUNK):
            block = carry + chunk
            cut = block.rfind(b"\n") + 1
            block, carry = block[:cut], block[cut:]
            at = block.rfind(needle) if latest_only else block.find(needle)
            while at >= 0:
                start = block.rfind(b"\n", 0, at) + 1
                end = block.index(b"\n", at)
                if latest_only:
                    found[:] = [block[start:end]]
                    break
                found.append(block[start:end])
                at = block.find(needle, end)
    return [log.result_from_record(log.decode(line)) for line in found if log.is_valid(line)]


def exports_dir(run: Run) -> Path:
    """Where the run's exports go by default: ``exports`` in its run dir (made, 0700, by the
    first export into it); the one place in a run dir an export may be written."""
    return run.run_dir / EXPORTS_NAME


def export_to_file(
    run: Run, path: Path, fmt: ExportFormat, choice: ExportChoice = ALL_RESULTS
) -> int:
    """Write the run's results to ``path``, in input order; returns the number of rows.

    ``ConfigError`` before anything is written if ``path`` is the run's input, its
    log or anything in a run dir but the run's ``exports`` folder; ``OSError`` if it
    cannot be written, with any earlier file at ``path`` left as it was."""
    if os.path.abspath(path.parent) == os.path.abspath(exports_dir(run)):
        path.parent.mkdir(mode=0o700, exist_ok=True)
    refuse_run_files(path, input=run.config.input, run_dir=run.run_dir)
    options = _options(run, fmt, choice)
    with output_bytes(path, mode=export_mode(run)) as raw:
        return _write_bytes(run, raw, fmt, choice.status, options)


def write_run(run: Run, raw: IO[bytes], fmt: ExportFormat, choice: ExportChoice) -> int:
    """``export_to_file`` to an open binary handle (``--output``'s temp file)."""
    return _write_bytes(run, raw, fmt, choice.status, _options(run, fmt, choice))


def _write_bytes(
    run: Run, raw: IO[bytes], fmt: ExportFormat, status: StatusFilter, options: RowOptions
) -> int:
    if run.config.steps and fmt == "parquet":
        item_columns, item_rows = _item_rows(run, status, flat=True)
        return write_parquet_rows(item_rows, raw, item_columns)
    if fmt == "parquet":
        columns = _table_columns(run, status, options)
        return write_parquet(_rows(run, status, options.attempts), raw, columns, options)
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    rows = _write_text(run, stream, fmt, status, options)
    stream.detach()  # the binary handle is its owner's to fsync and close
    return rows


def export_mode(run: Run) -> int:
    """An export holds what the log holds: never readable by more people than the log."""
    try:
        return 0o666 & stat.S_IMODE(run.log_path.stat().st_mode)
    except OSError:
        return 0o600


def export_run(
    run: Run, stream: IO[str], fmt: ExportFormat, choice: ExportChoice = ALL_RESULTS
) -> int:
    """Write the run's results to a text stream, in input order; returns the number of rows.
    Parquet is written to a file only (``export_to_file``)."""
    if fmt == "parquet":
        raise ConfigError("a Parquet export is written to a file: give --output FILE.parquet")
    return _write_text(run, stream, fmt, choice.status, _options(run, fmt, choice))


def _options(run: Run, fmt: ExportFormat, choice: ExportChoice) -> RowOptions:
    if run.config.steps and (choice.attempts or choice.prompt):
        flag = "--attempts" if choice.attempts else "--export-prompt"
        raise ConfigError(f"{flag} is per call; a pipeline's export is one row per item")
    if choice.attempts and fmt == "csv":
        raise ConfigError("--attempts needs JSONL or Parquet: a CSV cell holds no list")
    return RowOptions(
        prompt_of=_prompt_of(run) if choice.prompt else None,
        attempts=choice.attempts,
        raw_cells=choice.raw_cells,
    )


def _write_text(
    run: Run, stream: IO[str], fmt: ExportFormat, status: StatusFilter, options: RowOptions
) -> int:
    text_format: Literal["jsonl", "csv"] = "csv" if fmt == "csv" else "jsonl"
    if run.config.steps:
        flat = fmt == "csv"
        item_columns, built = _item_rows(run, status, flat=flat)
        return write_dict_rows(
            built, stream, text_format, item_columns, raw_cells=options.raw_cells
        )
    columns = _table_columns(run, status, options) if fmt == "csv" else None
    writer = ResultWriter(stream, text_format, columns=columns, options=options)
    for result, earlier in _rows(run, status, options.attempts):
        writer.write(result, earlier)
    writer.flush()
    return writer.rows


def _rows(
    run: Run, status: StatusFilter, attempts: bool
) -> Iterator[tuple[ItemResult, tuple[ItemResult, ...]]]:
    """The latest result of every pair with ``status``, in input order, with the records it
    replaced when ``attempts``."""
    for ordered in log.results_in_input_order(run.log_path, run.config.models, earlier=attempts):
        if status == "all" or ordered.result.status == status:
            yield ordered.result, ordered.earlier


def _item_rows(
    run: Run, status: StatusFilter, *, flat: bool
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """A pipeline's rows, one per item whose status is ``status``, nested or ``flat`` (with
    its columns: one pass over the log for the fields and parsed names)."""
    config = run.config
    columns: list[str] = []
    if flat:
        names: dict[tuple[str, ...], None] = {}
        for result in load_results(run):
            names[tuple(result.fields)] = None
        columns = flat_columns(config, names, parsed_names(load_results(run)))
    ordered = log.results_in_input_order(run.log_path, lane_keys(config))
    rows = (
        flat_row(config, row) if flat else nested_row(row)
        for row in group_items(o.result for o in ordered)
        if status == "all" or row.status == status
    )
    return columns, rows


def compare_run(run: Run) -> tuple[StepScores, ...]:
    """The run's models side by side (``engine._compare``), from its log in input order."""
    return compare(run.config, item_rows(run))


def item_rows(run: Run) -> Iterator[ItemRow]:
    """The run's results as one row per item (every lane's latest result), in input order."""
    ordered = log.results_in_input_order(run.log_path, lane_keys(run.config))
    return group_items(o.result for o in ordered)


def _table_columns(run: Run, status: StatusFilter, options: RowOptions) -> list[str]:
    """A CSV or Parquet export's columns: one pass over the log (in its own order) for the
    items' field names and, without a schema, the parsed output's."""
    schema = run.config.output_schema
    names: dict[tuple[str, ...], None] = {}
    parsed: dict[str, None] = dict.fromkeys((schema or {}).get("properties", {}))
    for result in select(load_results(run), status):
        names[tuple(result.fields)] = None
        if not schema and isinstance(result.parsed, dict):
            parsed.update(dict.fromkeys(result.parsed))
    return table_columns(names, list(parsed), options)


def _prompt_of(run: Run) -> PromptOf:
    """The prompt each result was sent, rendered again as the engine rendered it: an edited
    prompt, else the item's own, else the run's template (without ``--prompt``: the default
    for the first item's fields)."""
    config = run.config
    first = min((r for r in load_results(run) if r.fields), key=lambda r: r.line, default=None)
    fields = list(first.fields) if first is not None else []
    run_template = PromptTemplate.parse(config.prompt or default_template_for(fields))
    edited: dict[str, PromptTemplate] = {}

    def prompt_of(result: ItemResult) -> str | None:
        try:
            if result.prompt_override is None:
                return render_item(run_template, result.fields) if result.fields else None
            template = edited.get(result.prompt_override)
            if template is None:
                template = edited[result.prompt_override] = PromptTemplate.parse(
                    result.prompt_override
                )
            return render_item(template, result.fields, edited=True)
        except (ValueError, ConfigError):
            return None

    return prompt_of
