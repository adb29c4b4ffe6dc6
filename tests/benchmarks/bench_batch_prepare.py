"""Preparing and uploading a batch run, timed: ``python -m tests.benchmarks.bench_batch_prepare``.

Writes an N-item JSONL file (default 100,000 items of ~200 bytes) and runs the real
``batchdeck run --batch --detach`` on it in a child process: the items are read, priced,
reserved, chunked into jobs (50,000 requests each), each job's intent is fsynced, and
its requests are streamed to the provider, then the command returns. The provider is
simulate's batch store (files in the run dir, as a provider's upload keeps them), or
with ``--openai`` the fake server's OpenAI batch endpoints (``POST /v1/files``, then
``POST /v1/batches``) over HTTP on 127.0.0.1, the server in its own process; the
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
from contextlib import ExitStack
from pathlib import Path

import orjson

from engine import log
from tests.fakeserver.fixtures import run_fake_server

KEY = "sk-bench-batch"

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
    parser.add_argument(
        "--openai", action="store_true", help="upload to the fake server's OpenAI batch API"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        target: list[str] = ["--sim-batch-s", "86400"]
        env = dict(os.environ)
        if args.openai:
            server = stack.enter_context(run_fake_server(api_key=KEY, batch_s=86400))
            target = ["--model", "openai:gpt-4o-mini", "--base-url", server.openai_base_url]
            env["OPENAI_API_KEY"] = KEY
        measure(args.items, args.runs, target, env)


def measure(count: int, runs: int, target: list[str], env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "items.jsonl"
        with source.open("wb") as f:
            for i in range(count):
                row = {"id": f"item-{i}", "context": f"Ticket {i}: I was charged twice. " * 4}
                f.write(orjson.dumps(row) + b"\n")
        seconds: list[float] = []
        peaks: list[float] = []
        for run in range(runs):
            run_dir = root / f"run-{run}"
            command = [
                sys.executable, "-c", _CHILD, "run", str(source), "--batch", "--detach",
                *target, "--run-dir", str(run_dir), "--quiet",
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(
                command,
                env={**env, "BATCHDECK_HOME": str(root / "home")},
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"batchdeck failed ({done.returncode}): {done.stderr.strip()}")
            peak = float(done.stdout.split()[-1])
            jobs = len([r for r in log.scan(run_dir / "log.jsonl").batches.values() if r.job_id])
            print(
                f"run {run + 1}: {count:,} items prepared and uploaded in {jobs} jobs: "
                f"{elapsed:.2f} s, peak RSS {peak:.0f} MB"
            )
            seconds.append(elapsed)
            peaks.append(peak)
        print(
            f"median of {runs}: {statistics.median(seconds):.2f} s (target <= 10 s), "
            f"peak RSS {statistics.median(peaks):.0f} MB (target <= 150 MB)"
        )


if __name__ == "__main__":
    main()
