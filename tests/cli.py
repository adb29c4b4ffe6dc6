"""Running the real ``batchdeck`` command in a subprocess, as a user's shell would."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data"
COMMAND = [sys.executable, "-m", "tui.launch"]


def env(home: Path, **extra: str) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    values.update(BATCHDECK_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return values


def batchdeck(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    timeout: float = 60,
    stdin: bytes | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd or REPO,
        env=env(home, **(extra_env or {})),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(*args: str, home: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *args],
        cwd=REPO,
        env=env(home, **(extra_env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """Ctrl+C ``proc`` as a terminal would, wait for it to end, and return its stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return err


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, wait for it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def kill_after(
    *args: str, home: Path, seconds: float, extra_env: dict[str, str] | None = None
) -> int:
    """Start ``batchdeck *args``; once it has started (its first line on stderr), SIGKILL it
    after ``seconds`` unless it ended by then. Its exit status (``-SIGKILL`` if killed)."""
    proc = start(*args, home=home, extra_env=extra_env)
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # the run has started: its log is open
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=30)
    finally:
        reap(proc)


def kill_repeatedly(
    args: Sequence[str],
    run_dir: Path,
    *,
    home: Path,
    kills: int,
    at_least: int,
    within: tuple[float, float],
    seed: int,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Start ``batchdeck *args``, then ``resume run_dir`` again and again, each SIGKILLed at
    a random instant ``within`` (low, high) seconds of its start, until ``kills`` kills
    landed or a process ended by itself: the run is over. How many land before that depends
    on how fast the machine is (a provider's jobs go on while batchdeck is dead), so the
    test only asks that ``at_least`` did. The number of kills that landed."""
    rng = random.Random(seed)
    landed = 0
    while landed < kills:
        status = kill_after(*args, home=home, seconds=rng.uniform(*within), extra_env=extra_env)
        assert status in (-signal.SIGKILL, 0), status
        if status == 0:
            break
        landed += 1
        args = ("resume", str(run_dir))
    assert landed >= at_least, f"only {landed} of {kills} kills landed before the run ended"
    return landed
