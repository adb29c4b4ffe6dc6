"""Engine throughput and memory, headless, on the offline ``simulate`` provider.

Prints (medians, this machine):
  1. items/s with zero latency and the log fsyncing in groups (target >= 10,000);
  2. the same with the log switched off, and the ratio (target >= 90%);
  3. peak RSS of a whole run over a 1,000,000-item JSONL input (target <= 150 MB);
  4. time to scan a 1,000,000-record log for resume (target <= 3 s).

    python tests/benchmarks/bench_engine.py [--items 100000] [--runs 3] [--skip-million]
        [--workers 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks._common import run_child, write_items

RUN_CODE = """
import sys, time, anyio
from pathlib import Path
from engine._config import make_config
from engine._run import Run
from engine import log

source, run_dir, log_on = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "on"
workers = int(sys.argv[4])
if not log_on:  # the log switched off: no record is built, encoded or written
    log.result_record = lambda result: None
    log.encode = lambda record: b""
    log.LogWriter.write_group = lambda self, lines: None
config = make_config(input=source, sim={"latency_ms": 0}, workers=workers, durability="fsync")
run = Run.create(config, run_dir)
finished = []
start = time.perf_counter()
result = anyio.run(run.execute, [])
elapsed = time.perf_counter() - start
print(result.ok, elapsed)
"""

SCAN_CODE = """
import sys, time
from engine import log
start = time.perf_counter()
state = log.scan(sys.argv[1])
print(state.ok, time.perf_counter() - start)
"""


def throughput(source: Path, work: Path, log_on: bool, tag: str, workers: int) -> float:
    run_dir = work / f"run-{tag}-{time.monotonic_ns()}"
    state = "on" if log_on else "off"
    out, _ = run_child(RUN_CODE, str(source), str(run_dir), state, str(workers))
    ok, elapsed = out.split()
    return int(ok) / float(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = write_items(work / "items.jsonl", args.items)
        # Alternate on and off so a change in the machine's load hits both alike.
        on_all, off_all = [], []
        for _ in range(args.runs):
            on_all.append(throughput(source, work, True, "on", args.workers))
            off_all.append(throughput(source, work, False, "off", args.workers))
        on, off = statistics.median(on_all), statistics.median(off_all)
        print(f"engine throughput, {args.items:,} items, simulate at 0 ms, {args.workers} workers:")
        print(f"  log on (fsync per group): {on:>9,.0f} items/s  (runs: {_fmt(on_all)})")
        print(f"  log off:                  {off:>9,.0f} items/s  (runs: {_fmt(off_all)})")
        print(f"  log on / log off:         {100 * on / off:>8.1f} %")
        if args.skip_million:
            return
        million = write_items(work / "million.jsonl", 1_000_000)
        run_dir = work / "million-run"
        out, peak = run_child(RUN_CODE, str(million), str(run_dir), "on", str(args.workers))
        ok, elapsed = out.split()
        print(
            f"1,000,000-item run: {int(ok):,} ok in {float(elapsed):.1f}s, peak RSS {peak:.0f} MB"
        )
        scans = []
        for _ in range(args.runs):
            out, scan_peak = run_child(SCAN_CODE, str(run_dir / "log.jsonl"))
            scans.append(float(out.split()[1]))
        scans.sort()
        print(
            f"resume scan of the 1,000,000-record log: {scans[len(scans) // 2]:.2f}s median "
            f"(runs: {', '.join(f'{s:.2f}' for s in scans)}), peak RSS {scan_peak:.0f} MB"
        )


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
