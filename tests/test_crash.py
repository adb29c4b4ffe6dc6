"""SIGKILL a real ``batchdeck run`` at random instants, resume each time, lose nothing.

At the end every input id has exactly one terminal record in the log, and the
export equals that of a run that was never killed (latencies and times aside).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import orjson
import pytest

from engine import log
from tests.cli import batchdeck, kill_after

ITEMS = 3000
KILLS = 20
OPTIONS = ("--sim-latency-ms", "20", "--workers", "8", "--durability", "fsync")


def export_rows(run_dir: Path, home: Path) -> list[dict]:
    done = batchdeck("export", str(run_dir), home=home)
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    for row in rows:
        for timing in ("latency_ms", "started_at", "finished_at"):
            row.pop(timing)
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.timeout(300)  # dozens of real processes: minutes on a loaded machine
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(
            orjson.dumps({"id": f"t{i:04d}", "context": f"ticket {i}: printer on fire"}) + b"\n"
            for i in range(ITEMS)
        )
    )
    run_dir = tmp_path / "killed"
    rng = random.Random(7)
    args: tuple[str, ...] = ("run", str(source), *OPTIONS, "--run-dir", str(run_dir))
    for _ in range(KILLS):
        status = kill_after(*args, home=tmp_path, seconds=rng.uniform(0.0, 0.3))
        assert status == -signal.SIGKILL, "the run ended before it could be killed"
        args = ("resume", str(run_dir))
    done = batchdeck(*args, home=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr

    records = log.read_records(run_dir / "log.jsonl")
    ids = [log.result_from_record(r).id for r in records if r.get("k") == "result"]
    assert sorted(ids) == sorted({f"t{i:04d}" for i in range(ITEMS)})  # exactly one each

    clean = tmp_path / "clean"
    fast = ("--sim-latency-ms", "0", "--workers", "8")
    done = batchdeck("run", str(source), *fast, "--run-dir", str(clean), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert export_rows(run_dir, tmp_path) == export_rows(clean, tmp_path)
