"""The checkpoint log: the run's source of truth for results, resume, export and history.

One record per line, each with its own CRC32 (``_format``); record kinds and
their builders (``_records``); a writer that does one write and one fsync per
group and gives up for good on any error (``_writer``); recovery that keeps
the valid prefix and moves a crash's tail aside (``_recovery``); readers for
resume and export (``_scan``); fingerprints of config and input (``_fingerprint``).

Typical use::

    writer = LogWriter.create(run_dir / "log.jsonl", header_record(...), durability="fsync")
    writer.write_group([encode(result_record(r)) for r in results])   # per group commit
    writer.write_now(encode(pause_record()))                           # fsynced at once

    recovery = recover(log)             # reads only the tail: instant on a clean log
    state = scan(log)                   # indexed by item line: right while the input is unchanged
    if not fingerprint_matches(state.header or {}, input):   # --force: lines may have moved
        state = scan(log, index="id")
    state.status(model, item.id, item.line)   # "ok" | "failed" | "skipped" | None
    writer = LogWriter.open_append(log, durability="fsync")
"""

from engine.log._fingerprint import config_fingerprint, fingerprint_matches, input_fingerprint
from engine.log._format import FORMAT_VERSION, decode, encode, is_valid
from engine.log._ordered import Ordered, results_in_input_order
from engine.log._records import (
    BatchEntry,
    BatchRecord,
    BatchState,
    LifecycleKind,
    batch_from_record,
    batch_record,
    finish_record,
    header_record,
    hold_record,
    paid_record,
    pause_record,
    result_from_record,
    result_record,
    resume_record,
    session_record,
    stop_record,
)
from engine.log._recovery import Recovery, recover
from engine.log._scan import (
    IndexBy,
    LogRunState,
    LogState,
    ModelCounts,
    item_spend,
    iter_results,
    read_records,
    scan,
)
from engine.log._writer import Durability, LogWriter

__all__ = [
    "FORMAT_VERSION",
    "BatchEntry",
    "BatchRecord",
    "BatchState",
    "Durability",
    "IndexBy",
    "LifecycleKind",
    "LogRunState",
    "LogState",
    "LogWriter",
    "ModelCounts",
    "Ordered",
    "Recovery",
    "batch_from_record",
    "batch_record",
    "config_fingerprint",
    "decode",
    "encode",
    "finish_record",
    "fingerprint_matches",
    "header_record",
    "hold_record",
    "input_fingerprint",
    "is_valid",
    "iter_results",
    "item_spend",
    "paid_record",
    "pause_record",
    "read_records",
    "recover",
    "result_from_record",
    "result_record",
    "results_in_input_order",
    "resume_record",
    "scan",
    "session_record",
    "stop_record",
]
