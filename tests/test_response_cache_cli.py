"""The response cache through the real CLI, against the fake server over real HTTP: killed
with SIGKILL while it writes, shared by two runs at once, damaged on disk, listed and
cleared. Every answer the cache gives is checked by content: the fake server's answer
starts with the CRC32 of the prompt it was sent."""

from __future__ import annotations

import random
import signal
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.cli import batchdeck, kill_after, reap, start
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-cache-cli-0123456789abcdef"
MODEL = "openai:gpt-4o-mini"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, latency_ms=2) as fake:
        yield fake


def write_items(path: Path, count: int) -> Path:
    rows = ({"id": f"t{i:05d}", "context": f"ticket {i}: printer on fire"} for i in range(count))
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def run_args(server: FakeServer, source: Path, run_dir: Path, *extra: str) -> tuple[str, ...]:
    return (
        "run", str(source), "--model", MODEL, "--base-url", server.openai_base_url,
        "--prompt", "{context}", "--run-dir", str(run_dir), "--retry-wait", "0.01", *extra,
    )  # fmt: skip


def run(server: FakeServer, home: Path, *args: str) -> tuple[int, str, dict[str, dict]]:
    """Run the CLI; its exit code, stderr and results by id (from ``--output``)."""
    out = home / f"out-{random.getrandbits(32):08x}.jsonl"
    done = batchdeck(*args, "--output", str(out), home=home, extra_env={"OPENAI_API_KEY": KEY})
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
    return done.returncode, done.stderr, {row["id"]: row for row in rows}


def answers_its_prompt(row: dict) -> bool:
    head = f"[{zlib.crc32(row['context'].encode()):08x}]"
    return isinstance(row.get("output"), str) and row["output"].startswith(head)


def cached_ids(run_dir: Path) -> set[str]:
    """Ids whose result in the run's log came from the cache."""
    ids = set()
    for line in (run_dir / "log.jsonl").read_bytes().splitlines():
        record = orjson.loads(line.split(b" ", 1)[1])
        if record.get("k") == "result" and record.get("cached"):
            ids.add(record["head"][1])
    return ids


def test_a_second_identical_run_makes_no_request_and_costs_nothing(
    server: FakeServer, tmp_path: Path
) -> None:
    source = write_items(tmp_path / "items.jsonl", 40)
    server.reset()
    code, _, first = run(server, tmp_path, *run_args(server, source, tmp_path / "a"))
    assert code == 0 and server.stats()["requests"] == 40
    server.reset()
    code, err, second = run(server, tmp_path, *run_args(server, source, tmp_path / "b"))
    assert code == 0, err
    assert server.stats()["requests"] == 0
    assert "40 answers from the cache" in err and "cost $0.0000" in err
    assert all(row["output"] == first[i]["output"] and row["cached"] for i, row in second.items())
    assert not any(row["cached"] or row["saved_usd"] for row in first.values())
    assert all(row["saved_usd"] == pytest.approx(first[i]["cost_usd"]) for i, row in second.items())
    assert cached_ids(tmp_path / "b") == set(first)


def test_sigkill_while_the_cache_is_written_never_yields_a_wrong_answer(
    server: FakeServer, tmp_path: Path
) -> None:
    # Far more than a run gets through before its kill, answers from the cache included, even
    # on a fast, quiet machine (3,000 items finished before a 1.5 s kill there).
    source = write_items(tmp_path / "items.jsonl", 50_000)
    rng = random.Random(10)
    env = {"OPENAI_API_KEY": KEY}
    for kill in range(4):
        args = run_args(server, source, tmp_path / f"killed-{kill}", "--workers", "32")
        status = kill_after(*args, home=tmp_path, seconds=rng.uniform(0.4, 1.5), extra_env=env)
        assert status == -signal.SIGKILL, "the run ended before it could be killed"
    server.reset()
    code, err, rows = run(
        server, tmp_path, *run_args(server, source, tmp_path / "replay", "--cache-only")
    )
    assert server.stats()["requests"] == 0
    answered = {i: row for i, row in rows.items() if row["status"] == "ok"}
    assert answered, "no answer reached the cache before the kills"
    assert all(answers_its_prompt(row) for row in answered.values())
    skipped = [row for row in rows.values() if row["status"] != "ok"]
    assert all(row["error"].startswith("not_cached: ") for row in skipped)
    assert len(rows) == 50_000 and code == (1 if skipped else 0), err


def test_two_runs_share_the_cache_at_once(server: FakeServer, tmp_path: Path) -> None:
    source = write_items(tmp_path / "items.jsonl", 600)
    env = {"OPENAI_API_KEY": KEY}
    procs = [
        start(*run_args(server, source, tmp_path / name, "--workers", "16"), home=tmp_path,
              extra_env=env)
        for name in ("one", "two")
    ]  # fmt: skip
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "Traceback" not in err and "warning" not in err
    finally:
        for proc in procs:
            reap(proc)
    server.reset()
    code, err, rows = run(server, tmp_path, *run_args(server, source, tmp_path / "three"))
    assert code == 0, err
    assert server.stats()["requests"] == 0 and len(rows) == 600
    assert all(answers_its_prompt(row) for row in rows.values())


def test_a_damaged_cache_file_is_one_warning_line_and_the_run_goes_on(
    server: FakeServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "responses.sqlite3"
    cache.parent.mkdir()
    cache.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
    source = write_items(tmp_path / "items.jsonl", 10)
    code, err, rows = run(server, tmp_path, *run_args(server, source, tmp_path / "a"))
    assert code == 0 and len(rows) == 10 and all(answers_its_prompt(r) for r in rows.values())
    warnings = [line for line in err.splitlines() if "response cache" in line]
    assert len(warnings) == 1 and "Traceback" not in err, err
    assert "batchdeck cache clear" in warnings[0]

    cleared = batchdeck("cache", "clear", home=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    code, err, _ = run(server, tmp_path, *run_args(server, source, tmp_path / "b"))
    assert code == 0 and "response cache" not in err


def test_cache_stats_and_clear(server: FakeServer, tmp_path: Path) -> None:
    source = write_items(tmp_path / "items.jsonl", 15)
    assert run(server, tmp_path, *run_args(server, source, tmp_path / "a"))[0] == 0
    stats = batchdeck("cache", "stats", home=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "answers   15" in stats.stdout and str(tmp_path / "cache") in stats.stdout

    kept = batchdeck("cache", "clear", "--older-than", "1d", home=tmp_path)
    assert kept.returncode == 0 and "dropped 0 answers" in kept.stderr
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite3") as db:
        db.execute("UPDATE answers SET stored = stored - 2 * 86400 WHERE rowid % 3 = 0")
    old = batchdeck("cache", "clear", "--older-than", "1d", home=tmp_path)
    assert old.returncode == 0 and "dropped 5 answers" in old.stderr
    every = batchdeck("cache", "clear", home=tmp_path)
    assert every.returncode == 0 and "dropped 10 answers" in every.stderr
    bad = batchdeck("cache", "clear", "--older-than", "soon", home=tmp_path)
    assert bad.returncode == 2 and "not an age" in bad.stderr


def test_no_cache_with_cache_only_is_refused_in_one_line(tmp_path: Path) -> None:
    source = write_items(tmp_path / "items.jsonl", 3)
    done = batchdeck("run", str(source), "--no-cache", "--cache-only", home=tmp_path)
    assert done.returncode == 2 and "drop --no-cache" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
