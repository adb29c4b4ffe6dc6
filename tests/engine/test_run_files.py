"""What a run leaves on disk: who may read it, and what a write that fails or is killed leaves."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import export_to_file
from engine._atomic import write_atomic
from tests.engine.scripted import items, make_run

pytestmark = pytest.mark.anyio


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022), under which a plain open() makes files others can read."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_run_dir_is_0700_and_every_file_in_it_0600(
    tmp_path: Path, open_umask: None
) -> None:
    run = make_run(tmp_path, items(3))
    await run.execute()
    assert _mode(run.run_dir) == 0o700
    files = sorted(path.name for path in run.run_dir.iterdir())
    assert {"config.json", "log.jsonl", "summary.json"} <= set(files)
    assert {name: _mode(run.run_dir / name) for name in files} == dict.fromkeys(files, 0o600)


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary.json"
    write_atomic(target, b"old")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine._atomic.os.replace", full_disk)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]


async def test_an_export_is_never_readable_by_more_people_than_its_log(
    tmp_path: Path, open_umask: None
) -> None:
    run = make_run(tmp_path, items(3))
    await run.execute()
    out = tmp_path / "results.csv"
    assert export_to_file(run, out, "csv") == 3
    assert _mode(out) == 0o600
    run.log_path.chmod(0o640)  # a log the user shared with their group: so is its export
    export_to_file(run, out, "csv")
    assert _mode(out) == 0o640
