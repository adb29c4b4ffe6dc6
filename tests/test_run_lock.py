"""One process drives a run: real ``batchdeck`` processes racing for one run dir.

Without the lock two resumes of one killed run both paid for the items left,
and a resume while the run was still going did too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson

from engine import log
from tests.cli import batchdeck, reap, start

ITEMS = 400
SLOW = ("--sim-latency-ms", "100", "--workers", "8")
"""About five seconds for the whole input: two resumes started together overlap."""
HOLDING = ("--sim-latency-ms", "1000", "--workers", "2")
"""Minutes for the whole input: a run that is still going whenever the test looks."""


def _input(tmp_path: Path) -> Path:
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(
            orjson.dumps({"id": f"t{i:03d}", "context": f"ticket {i}"}) + b"\n"
            for i in range(ITEMS)
        )
    )
    return source


@contextmanager
def _running(*args: str, home: Path) -> Iterator[subprocess.Popen[str]]:
    """A batchdeck process, killed and reaped on the way out whatever happened."""
    proc = start(*args, home=home)
    try:
        yield proc
    finally:
        reap(proc)


def _started(proc: subprocess.Popen[str]) -> str:
    """Wait for the run's first line ("run ... in DIR" / "resuming ..."): it holds the lock."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "run " in line or "resuming" in line, line
    return line


def _ids_paid(run_dir: Path) -> Counter[str]:
    records = log.read_records(run_dir / "log.jsonl")
    return Counter(log.result_from_record(r).id for r in records if r.get("k") == "result")


def _killed_run(tmp_path: Path) -> Path:
    """A run SIGKILLed part way: some items logged, the rest left to resume."""
    run_dir = tmp_path / "night-batch"
    with _running(
        "run", str(_input(tmp_path)), *SLOW, "--run-dir", str(run_dir), home=tmp_path
    ) as proc:
        _started(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert sum(_ids_paid(run_dir).values()) < ITEMS
    return run_dir


def test_two_resumes_of_one_killed_run_at_once_pay_for_no_item_twice(tmp_path: Path) -> None:
    run_dir = _killed_run(tmp_path)
    with ExitStack() as stack:
        first, second = (
            stack.enter_context(_running("resume", str(run_dir), *SLOW[2:], home=tmp_path))
            for _ in range(2)
        )
        outcomes = sorted(proc.wait(timeout=120) for proc in (first, second))
        errors = [proc.stderr.read() for proc in (first, second) if proc.stderr is not None]
    paid = _ids_paid(run_dir)
    assert set(paid) == {f"t{i:03d}" for i in range(ITEMS)}
    assert max(paid.values()) == 1  # simulate never fails: one result per id means one call
    assert outcomes == [0, 2], errors
    refusal = next(text for text in errors if "is being run by" in text)
    assert refusal.count("\n") == 1 and "Traceback" not in refusal


def test_a_resume_while_the_run_goes_refuses_naming_it_and_runs_once_it_is_killed(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "night-batch"
    with _running(
        "run", str(_input(tmp_path)), *HOLDING, "--run-dir", str(run_dir), home=tmp_path
    ) as going:
        _started(going)
        refused = batchdeck("resume", str(run_dir), home=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr == (
            f"batchdeck: error: run night-batch is being run by pid {going.pid} on "
            f"{socket.gethostname()} since {_since(run_dir)}: wait for it to end, or add "
            "--wait to start when it does\n"
        )
        going.send_signal(signal.SIGKILL)
        going.wait(timeout=30)
    # The kernel dropped the dead process's lock: one more call, and the run stays resumable.
    done = batchdeck("resume", str(run_dir), "--max-items", "1", home=tmp_path, timeout=60)
    assert done.returncode == 3, done.stderr
    assert max(_ids_paid(run_dir).values()) == 1


def test_wait_starts_when_the_holder_ends_and_ctrl_c_gives_up_waiting(tmp_path: Path) -> None:
    run_dir = tmp_path / "night-batch"
    with ExitStack() as stack:
        going = stack.enter_context(_running(*_run_args(tmp_path, run_dir, HOLDING), home=tmp_path))
        _started(going)
        impatient = stack.enter_context(_running("resume", str(run_dir), "--wait", home=tmp_path))
        assert impatient.stderr is not None
        assert f"waiting for pid {going.pid}" in impatient.stderr.readline()
        impatient.send_signal(signal.SIGINT)
        assert impatient.wait(timeout=30) == 130

        patient = stack.enter_context(_running("resume", str(run_dir), "--wait", home=tmp_path))
        assert patient.stderr is not None
        assert f"waiting for pid {going.pid}" in patient.stderr.readline()
        going.send_signal(signal.SIGKILL)
        assert "resuming night-batch" in patient.stderr.readline()
        patient.send_signal(signal.SIGINT)  # a first Ctrl+C stops it cleanly, resumable
        assert patient.wait(timeout=60) == 130


def _run_args(tmp_path: Path, run_dir: Path, speed: tuple[str, ...]) -> tuple[str, ...]:
    return ("run", str(_input(tmp_path)), *speed, "--run-dir", str(run_dir))


def _since(run_dir: Path) -> str:
    """When the holder took the lock, as the lock file says (the refusal prints it)."""
    return str(orjson.loads((run_dir / "lock").read_bytes())["since"]).replace("T", " ")


def test_the_lock_file_names_its_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "night-batch"
    with _running(
        "run", str(_input(tmp_path)), *HOLDING, "--run-dir", str(run_dir), home=tmp_path
    ) as going:
        _started(going)
        held = orjson.loads((run_dir / "lock").read_bytes())
        assert (held["pid"], held["host"]) == (going.pid, socket.gethostname())
        assert oct((run_dir / "lock").stat().st_mode & 0o777) == oct(0o600 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_lock_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "night-batch"
    done = batchdeck(*_run_args(tmp_path, run_dir, SLOW[:2]), "--max-items", "1", home=tmp_path)
    assert done.returncode == 3, done.stderr
    (run_dir / "lock").unlink()
    (run_dir / "lock").mkdir()  # what a hostile or confused hand may leave there
    refused = batchdeck("resume", str(run_dir), home=tmp_path)
    assert (refused.returncode, refused.stderr) == (
        2,
        f"batchdeck: error: cannot lock run night-batch: {run_dir / 'lock'}: Is a directory\n",
    )
