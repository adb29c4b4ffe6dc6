"""Engine throughput of a three-step pipeline, headless, on ``simulate`` at zero latency.

Each item goes through extract -> classify -> summarise (each step reads the one before
it), so every item is three calls, three log records and two hand-offs from the log's
commit back to the dispatcher. Prints the median items/s and calls/s of several runs in
fresh processes (target: >= 5,000 items/s, i.e. >= 15,000 calls/s), and for scale a
plain run of one step over the same items.

    python -m tests.benchmarks.bench_pipeline [--items 50000] [--runs 3] [--workers 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks._common import run_child, write_items

STEPS = (
    ("extract", "List what this ticket is about: {context}"),
    ("classify", "Label this ticket ({tier}): {extract.output}"),
    ("summarise", "Summarise for the queue: {classify.output}"),
)

RUN_CODE = """
import sys, time, anyio
from pathlib import Path
from engine._config import make_config
from engine._run import Run
from engine._steps import StepSpec

source, run_dir, workers, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = "simulate:gpt-4o-mini"
specs = tuple(
    StepSpec(name=name, models=(model,), prompt=prompt)
    for name, prompt in [line.split("|", 1) for line in steps.split("\\n") if line]
)
values = {"steps": specs, "models": (model,)} if specs else {}
config = make_config(input=source, sim={"latency_ms": 0}, workers=workers, **values)
run = Run.create(config, run_dir)
start = time.perf_counter()
result = anyio.run(run.execute, [])
elapsed = time.perf_counter() - start
print(result.ok, elapsed)
"""


def measure(source: Path, work: Path, workers: int, steps: str) -> tuple[float, int]:
    """Calls per second and calls of one run in a fresh process."""
    run_dir = work / f"run-{time.monotonic_ns()}"
    out, _ = run_child(RUN_CODE, str(source), str(run_dir), str(workers), steps)
    ok, elapsed = out.split()
    return int(ok) / float(elapsed), int(ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    pipeline = "\n".join(f"{name}|{prompt}" for name, prompt in STEPS)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = write_items(work / "items.jsonl", args.items)
        rates, plain = [], []
        for _ in range(args.runs):  # alternated, so both see the same load
            calls_per_s, calls = measure(source, work, args.workers, pipeline)
            assert calls == 3 * args.items, f"{calls} calls, not {3 * args.items}"
            rates.append(calls_per_s)
            plain.append(measure(source, work, args.workers, "")[0])
    calls_s = statistics.median(rates)
    print(
        f"three-step pipeline, {args.items:,} items, {args.workers} workers, simulate at 0 ms: "
        f"{calls_s / 3:,.0f} items/s = {calls_s:,.0f} calls/s (median of {args.runs}: "
        + " / ".join(f"{r / 3:,.0f}" for r in rates)
        + " items/s; target >= 5,000)"
    )
    print(
        f"one step over the same items: {statistics.median(plain):,.0f} calls/s (median; "
        + " / ".join(f"{r:,.0f}" for r in plain)
        + ")"
    )


if __name__ == "__main__":
    main()
