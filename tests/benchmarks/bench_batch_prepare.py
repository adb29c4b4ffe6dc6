"""Preparing and uploading a batch run, timed: ``python -m tests.benchmarks.bench_batch_prepare``.

Writes an N-item JSONL file (default 100,000 items of ~200 bytes) and runs the real
``batchdeck run --batch --detach`` on it in a child process: the items are read, priced,
reserved, chunked into jobs (50,000 requests each), each job's intent is fsynced, and
its requests are streamed to the provider, then the command returns. The provider is
simulate's batch store (files in the run dir, as a provider's upload keeps them); the
command's wall time and its peak RSS (``VmHWM`` read by a wrapper in the child, as
``ru_maxrss`` would include the parent's) are printed per run, then the medians.
Targets: <= 10 s and <= 150 MB at 100,000 items.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

_CHILD = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    sys.stdout.write(f"{rss / 1024:.1f}\\n")
atexit.register(peak)
from engine.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
raise SystemExit(code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "items.jsonl"
        with source.open("wb") as f:
            for i in range(args.items):
                row = {"id": f"item-{i}", "context": f"Ticket {i}: I was charged twice. " * 4}
                f.write(orjson.dumps(row) + b"\n")
        seconds: list[float] = []
        peaks: list[float] = []
        for run in range(args.runs):
            run_dir = root / f"run-{run}"
            command = [
                sys.executable, "-c", _CHILD, "run", str(source), "--batch", "--detach",
                "--sim-batch-s", "86400", "--run-dir", str(run_dir), "--quiet",
            ]  # fmt: skip
            env = {**os.environ, "BATCHDECK_HOME": str(root / "home")}
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"batchdeck failed ({done.returncode}): {done.stderr.strip()}")
            peak = float(done.stdout.split()[-1])
            jobs = len(list((run_dir / "sim-batches").glob("*/job.json")))
            print(
                f"run {run + 1}: {args.items:,} items prepared and uploaded in {jobs} jobs: "
                f"{elapsed:.2f} s, peak RSS {peak:.0f} MB"
            )
            seconds.append(elapsed)
            peaks.append(peak)
        print(
            f"median of {args.runs}: {statistics.median(seconds):.2f} s (target <= 10 s), "
            f"peak RSS {statistics.median(peaks):.0f} MB (target <= 150 MB)"
        )


if __name__ == "__main__":
    main()
