"""Opening a past run, printed: ``python -m tests.benchmarks.bench_replay [--records N]``.

Builds a run of N result records (default 1,000,000, ~700 MB of log) with its
``summary.json``, as a finished run leaves it, then, each in a fresh child
process, median of ``--runs``:

1. before: reading every result with ``load_results`` (what the app did before
   it could show the first row);
2. ``Run.replay`` with a subscriber that drops the events: the time to the
   first page (its ``CostUpdated``) and to ``RunFinished``;
3. the same with the app's ``RunModel`` folding every event (what the run
   screen's model does), and that process's peak RSS.

Everything is written to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import orjson

from engine._config import make_config
from engine._paths import SUMMARY_NAME
from engine._run import Run
from engine.log import LogWriter, encode, result_record
from tests.benchmarks._common import run_child, write_items
from tests.benchmarks.bench_log import sample

_CHILD = """
import sys, time, anyio
from engine import CostUpdated, Run, load_results
what, run_dir = sys.argv[1], sys.argv[2]
run = Run.open(run_dir)
first = None
start = time.perf_counter()
if what == "load":
    count = sum(1 for _ in load_results(run))
else:
    if what == "model":
        from tui.model import RunModel
        fold = RunModel().apply
    else:
        fold = lambda event: None

    def subscriber(event):
        global first
        fold(event)
        if first is None and isinstance(event, CostUpdated):
            first = time.perf_counter() - start

    count = anyio.run(run.replay, [subscriber]).ok
print(count, first or 0.0, time.perf_counter() - start)
"""


def build_run(work: Path, records: int) -> Path:
    source = write_items(work / "input.jsonl", 1)  # replay never reads the input
    run_dir = work / "run"
    run = Run.create(make_config(input=str(source), sim={"latency_ms": 0}), run_dir)
    anyio.run(run.execute)  # the run's dir, config and log, as a real run leaves them
    with LogWriter.open_append(run.log_path, durability="flush") as writer:
        for at in range(0, records, 10_000):
            writer.write_group(
                [encode(result_record(sample(i))) for i in range(at, min(records, at + 10_000))]
            )
    cost = sample(0).cost_usd * records
    summary = {"state": "finished", "ok": records, "failed": 0, "skipped": 0, "remaining": 0}
    summary |= {"cost_usd": cost, "input_tokens": 182 * records, "output_tokens": 74 * records}
    (run_dir / SUMMARY_NAME).write_bytes(orjson.dumps(summary))
    return run_dir


def measure(what: str, run_dir: Path, runs: int) -> tuple[list[float], list[float], float]:
    firsts, totals, peak = [], [], 0.0
    for _ in range(runs):
        out, rss = run_child(_CHILD, what, str(run_dir))
        _, first, total = out.split()
        firsts.append(float(first))
        totals.append(float(total))
        peak = max(peak, rss)
    return sorted(firsts), sorted(totals), peak


def _runs(values: list[float]) -> str:
    return (
        f"{statistics.median(values):.3f} s median (runs: {', '.join(f'{v:.3f}' for v in values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_dir = build_run(Path(tmp), args.records)
        size_mb = (run_dir / "log.jsonl").stat().st_size / 1e6
        print(
            f"a run of {args.records:,} results ({size_mb:,.0f} MB of log) built in "
            f"{time.perf_counter() - start:.1f} s"
        )
        _, totals, rss = measure("load", run_dir, args.runs)
        print(f"1. before: load_results of every result: {_runs(totals)}, peak RSS {rss:.0f} MB")
        firsts, totals, rss = measure("events", run_dir, args.runs)
        print(f"2. Run.replay, events dropped: first page {_runs(firsts)}")
        print(f"   every result published: {_runs(totals)}, peak RSS {rss:.0f} MB")
        firsts, totals, rss = measure("model", run_dir, args.runs)
        print(f"3. Run.replay folded into the app's RunModel: first page {_runs(firsts)}")
        print(f"   every result folded: {_runs(totals)}, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
