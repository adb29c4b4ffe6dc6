"""A full disk under the log or under ``--output``: one line, exit 2, no ``internal error``,
and nothing the user had is lost. A real tiny tmpfs (mounting needs root; skipped otherwise)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import SAMPLES, batchdeck

TICKETS = str(SAMPLES / "tickets.jsonl")
FAST = ("--sim-latency-ms", "0")


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 20 KiB filesystem: room for a run dir's first files, not for 60 results."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def error_lines(stderr: str) -> list[str]:
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("batchdeck: error:")]


def test_a_log_on_a_full_disk_stops_the_run_with_one_line(tiny: Path, tmp_path: Path) -> None:
    run_dir = tiny / "run"
    done = batchdeck("run", TICKETS, *FAST, "--run-dir", str(run_dir), home=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert str(run_dir / "log.jsonl") in line and "No space left on device" in line


def test_output_on_a_full_disk_is_one_line_and_keeps_the_old_file(
    tiny: Path, tmp_path: Path
) -> None:
    out = tiny / "out.jsonl"
    out.write_bytes(b'{"earlier": "export"}\n')
    done = batchdeck("run", TICKETS, *FAST, "--output", str(out), home=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done.stderr)
    assert f"--output {out}: No space left on device" in line
    assert out.read_bytes() == b'{"earlier": "export"}\n'
    assert [p.name for p in tiny.iterdir()] == ["out.jsonl"]  # no temp file left behind
