"""The user's files: nothing batchdeck writes lands on the input, a log or a run dir; a write
killed mid-way leaves the earlier file; a refused run leaves no run dir; a run's saved
settings edited between sessions are refused; a run dir deleted mid-run stops it in one
line; a damaged run is listed as damaged, not hidden."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from engine.cli import main
from tests.cli import reap, start

FAST = ("--sim-latency-ms", "0")


def _items(path: Path, count: int) -> Path:
    path.write_bytes(
        b"".join(
            orjson.dumps({"id": f"t{i:05d}", "context": f"ticket {i}"}) + b"\n"
            for i in range(count)
        )
    )
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def _listed(capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    """``batchdeck runs``: each run's id to its state and the rest of its line."""
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    return {line.split()[0]: line.split(None, 2)[1:] for line in lines}


def _runs(home: Path) -> list[str]:
    root = home / "runs"
    return sorted(path.name for path in root.iterdir()) if root.is_dir() else []


def _finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], count: int = 20) -> Path:
    source = _items(tmp_path / "items.jsonl", count)
    run_dir = tmp_path / "done"
    code, err = _cli(capsys, "run", str(source), *FAST, "--run-dir", str(run_dir))
    assert code == 0, err
    return run_dir


# ---- --output and export paths ----


def test_output_naming_the_input_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], batchdeck_home: Path
) -> None:
    source = _items(tmp_path / "items.jsonl", 5)
    before = source.read_bytes()
    alias = tmp_path / "alias.jsonl"
    os.link(source, alias)
    for named in (source, alias, tmp_path / "." / "items.jsonl"):
        code, err = _cli(capsys, "run", str(source), *FAST, "--output", str(named))
        assert code == 2
        assert err == (
            f"batchdeck: error: {named} is this run's input file: writing there would destroy "
            "it; pick another path\n"
        )
    assert source.read_bytes() == before
    assert _runs(batchdeck_home) == []  # refused before its first call: no run dir either


def test_output_or_export_onto_a_log_or_into_a_run_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _finished_run(tmp_path, capsys)
    log_path = run_dir / "log.jsonl"
    before = log_path.read_bytes()
    hardlink, symlink = tmp_path / "hard.jsonl", tmp_path / "soft.jsonl"
    os.link(log_path, hardlink)
    symlink.symlink_to(log_path)
    for target in (hardlink, symlink):
        code, err = _cli(capsys, "export", str(run_dir), "--output", str(target))
        assert (code, err) == (
            2,
            f"batchdeck: error: {target} is {log_path} (a link to it, or the same file): "
            "writing there would destroy it; pick another path\n",
        )
        code, err = _cli(capsys, "resume", str(run_dir), "--output", str(target))
        assert code == 2 and "would destroy it" in err
    for inside in (log_path, run_dir / "out.csv"):
        code, err = _cli(capsys, "export", str(run_dir), "--output", str(inside))
        assert code == 2
        assert err == (
            f"batchdeck: error: {inside} is inside run dir {run_dir}: write it somewhere "
            "else, run dirs hold only what batchdeck keeps there\n"
        )
    assert log_path.read_bytes() == before
    assert sorted(path.name for path in run_dir.iterdir()) == [
        "config.json",
        "lock",
        "log.jsonl",
        "summary.json",
    ]


# ---- refused runs leave no run dir ----


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--model", "openai:gpt-4o-mini"), "no API key for openai"),
        (("--model", "openai:gpt-unpriced-9", "--max-cost", "1"), "no price known for"),
    ],
    ids=["missing-key", "cap-on-unpriced-model"],
)
def test_a_run_refused_before_its_first_call_leaves_no_run_dir(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    batchdeck_home: Path,
    args: tuple[str, ...],
    says: str,
) -> None:
    if "--max-cost" in args:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    monkeypatch.chdir(tmp_path)  # no .env of the repo's
    source = _items(tmp_path / "items.jsonl", 3)
    code, err = _cli(capsys, "run", str(source), *args)
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert _runs(batchdeck_home) == []
    assert _listed(capsys) == {}


def test_run_dir_naming_a_dir_that_holds_other_files_is_refused_and_leaves_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--run-dir .` in a project: its own config.json and summary.json are not batchdeck's.
    project = tmp_path / "project"
    project.mkdir()
    theirs = {"config.json": b'{"theirs": true}\n', "summary.json": b"their summary\n"}
    for name, data in theirs.items():
        (project / name).write_bytes(data)
    source = _items(tmp_path / "items.jsonl", 3)
    code, err = _cli(capsys, "run", str(source), *FAST, "--run-dir", str(project))
    assert code == 2 and str(project) in err and err.count("\n") == 1, err
    assert sorted(path.name for path in project.iterdir()) == sorted(theirs)
    for name, data in theirs.items():
        assert (project / name).read_bytes() == data


# ---- atomic writes ----


def test_an_export_killed_mid_way_leaves_the_earlier_export_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _finished_run(tmp_path, capsys, count=40_000)
    out = tmp_path / "out.jsonl"
    code, err = _cli(capsys, "export", str(run_dir), "--output", str(out))
    assert code == 0, err
    earlier = out.read_bytes()
    stat = out.stat()
    proc = start("export", str(run_dir), "--output", str(out), home=tmp_path)
    try:
        # Killed once it has begun writing: a temp file beside the target, or (before the
        # fix) the target itself truncated and refilling.
        _until(
            lambda: (
                proc.poll() is not None
                or any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
                or out.stat().st_mtime_ns != stat.st_mtime_ns
            )
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        reap(proc)
    assert proc.returncode == -signal.SIGKILL, "the export ended before it could be killed"
    assert out.read_bytes() == earlier


# ---- the saved config is the one the run started with ----


def test_a_config_edited_between_sessions_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _items(tmp_path / "items.jsonl", 10)
    run_dir = tmp_path / "run"
    code, err = _cli(
        capsys, "run", str(source), *FAST, "--max-items", "4", "--run-dir", str(run_dir)
    )
    assert code == 3, err
    config_path = run_dir / "config.json"
    config = orjson.loads(config_path.read_bytes())
    config["models"] = ["simulate:gpt-4o-mini", "simulate:gpt-4o"]
    config_path.write_bytes(orjson.dumps(config))
    code, err = _cli(capsys, "resume", str(run_dir))
    assert (code, err) == (
        2,
        f"batchdeck: error: {config_path} was edited: its settings are not those run run "
        "started with (its log says so): put it back, or resume with --force to use it "
        "anyway\n",
    )
    code, err = _cli(capsys, "resume", str(run_dir), "--force")
    assert code == 0, err


# ---- a run dir deleted under a run ----


def test_a_run_dir_deleted_mid_run_stops_the_run_in_one_line(tmp_path: Path) -> None:
    source = _items(tmp_path / "items.jsonl", 2000)
    run_dir = tmp_path / "doomed"
    proc = start(
        "run", str(source), "--sim-latency-ms", "50", "--workers", "4", "--durability", "flush",
        "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "run doomed" in proc.stderr.readline()
        for path in run_dir.iterdir():
            path.unlink()
        run_dir.rmdir()
        _, err = proc.communicate(timeout=60)
    finally:
        reap(proc)
    assert proc.returncode == 2, err
    first, *rest = err.splitlines()
    assert first == (
        f"batchdeck: error: checkpoint log {run_dir / 'log.jsonl'}: it was deleted, with its "
        "run dir or alone, while the run was going"
    )
    assert "internal error" not in err and "Error" not in err
    assert not run_dir.exists()


# ---- damaged runs are listed ----


def test_a_damaged_log_or_config_is_listed_as_damaged_and_a_bad_summary_is_rescanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], batchdeck_home: Path
) -> None:
    source = _items(tmp_path / "items.jsonl", 6)
    for name in ("bad-log", "bad-config", "bad-summary"):
        run_dir = batchdeck_home / "runs" / name
        code, err = _cli(capsys, "run", str(source), *FAST, "--run-dir", str(run_dir))
        assert code == 0, err
    runs = batchdeck_home / "runs"
    log_path = runs / "bad-log" / "log.jsonl"
    lines = log_path.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"k":"result","garbage":true}\n'
    log_path.write_bytes(b"".join(lines))
    (runs / "bad-config" / "config.json").write_bytes(b"{not json")
    (runs / "bad-summary" / "summary.json").write_bytes(b"\x00\x00")
    listed = _listed(capsys)
    assert set(listed) == {"bad-log", "bad-config", "bad-summary"}
    assert listed["bad-log"][0] == "damaged" and "line 4" in listed["bad-log"][1]
    assert listed["bad-config"][0] == "damaged" and "config.json" in listed["bad-config"][1]
    assert "finished" in listed["bad-summary"][1] and " 6/" in listed["bad-summary"][1]


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.002)


def test_output_to_a_pipe_streams_into_it_and_to_a_dir_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], batchdeck_home: Path
) -> None:
    run_dir = _finished_run(tmp_path, capsys, count=5)
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, err = _cli(capsys, "export", str(run_dir), "--format", "jsonl", "--output", str(fifo))
    assert code == 0, err
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # written into, not replaced by a file
    assert [orjson.loads(line)["id"] for line in received[0].splitlines()] == [
        f"t{i:05d}" for i in range(5)
    ]

    source = _items(tmp_path / "more.jsonl", 3)
    folder = tmp_path / "results.jsonl"
    folder.mkdir()
    code, err = _cli(capsys, "run", str(source), *FAST, "--output", str(folder))
    assert (code, err) == (
        2,
        f"batchdeck: error: --output {folder}: Is a directory; the results are in the run's "
        "log (batchdeck export RUN --output FILE)\n",
    )
    assert _runs(batchdeck_home) == []
