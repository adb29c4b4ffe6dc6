"""Helpers the benchmark scripts share: data files, medians, peak RSS of a child process."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[2]


def write_items(path: Path, count: int) -> Path:
    """``count`` ticket-like JSONL items of ~200 bytes, written in chunks."""
    with path.open("wb") as handle:
        for start in range(0, count, 10_000):
            handle.write(
                b"".join(
                    orjson.dumps(
                        {
                            "id": f"t{i:07d}",
                            "context": f"Ticket {i}: my invoice shows a double charge for the "
                            "March plan and support has not answered in two days.",
                            "tier": "pro",
                        }
                    )
                    + b"\n"
                    for i in range(start, min(count, start + 10_000))
                )
            )
    return path


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


PEAK_RSS_CODE = """
import resource
with open("/proc/self/status") as _status:
    _own_kb = next(int(line.split()[1]) for line in _status if line.startswith("VmHWM"))
print(max(_own_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
"""
"""Prints the process's peak RSS in MB, its largest child's if larger. ``VmHWM``, not its
``ru_maxrss``: that survives fork and exec, so a child of a large parent reports the parent's."""


def run_child(code: str, *args: str) -> tuple[str, float]:
    """Run python ``code`` in a fresh process; returns its stdout and its own peak RSS in MB
    (its largest child's, if that was larger)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code + PEAK_RSS_CODE, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip()[-2000:]}")
    *lines, peak = done.stdout.strip().splitlines()
    return "\n".join(lines), float(peak)
