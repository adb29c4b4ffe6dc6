"""The checkpoint log: line format, record kinds, the writer's failure modes, scan and readers."""

from __future__ import annotations

import errno
import os
import stat
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._errors import LogCorrupt, LogError, LogWriteError
from engine._results import ErrorInfo, ItemResult, Usage
from engine.log import (
    FORMAT_VERSION,
    BatchEntry,
    BatchRecord,
    IndexBy,
    LogWriter,
    _verify,
    batch_from_record,
    batch_record,
    config_fingerprint,
    encode,
    fingerprint_matches,
    finish_record,
    header_record,
    input_fingerprint,
    item_spend,
    iter_results,
    paid_record,
    pause_record,
    read_records,
    result_from_record,
    result_record,
    resume_record,
    scan,
    session_record,
    stop_record,
)
from engine.log._records import HEAD_OFFSET, RESULT_START

INDEXES: tuple[IndexBy, ...] = ("line", "id")


def result(
    id: str = "t1",
    status: str = "ok",
    *,
    model: str = "simulate:gpt-4o-mini",
    line: int = 1,
    **kw: Any,
) -> ItemResult:
    return ItemResult(id=id, model=model, status=status, line=line, fields={"id": id}, **kw)  # type: ignore[arg-type]


FULL = ItemResult(
    id="ticket-7",
    model="openai:gpt-4o-mini",
    status="failed",
    line=7,
    fields={"id": "ticket-7", "context": 'naïve «quotes» " and \\ and \n', "n": 3, "tags": ["a"]},
    output="line one\nline two \u2603",
    parsed={"label": "billing", "scores": [0.1, 0.9], "nested": {"ok": True}},
    usage=Usage(120, 40, 100),
    cost_usd=0.00042,
    latency_ms=812.5,
    attempts=3,
    error=ErrorInfo("invalid_output", "not valid JSON"),
    attempt_errors=(
        ErrorInfo("rate_limited", "429"),
        ErrorInfo("invalid_output", "not valid JSON"),
    ),
    finish_reason="length",
    simulated=True,
    prompt_override="Classify: {context}",
)


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    with LogWriter.create(
        path, header_record("run-1", config="c" * 64, input=None, t=1.0), durability="flush"
    ) as writer:
        writer.write_group([encode(r) for r in records])
    return path


def results_log(path: Path, results: list[ItemResult]) -> Path:
    return write_log(path, [result_record(r) for r in results])


# -- format and records ------------------------------------------------------------------


def test_a_line_is_the_crc32_of_its_json_a_space_the_json_and_a_newline() -> None:
    line = encode({"k": "pause", "t": 2.5})
    crc, body = line[:8], line[9:-1]
    assert line.endswith(b"\n") and line[8:9] == b" " and line.count(b"\n") == 1
    assert crc == b"%08x" % zlib.crc32(body)
    assert orjson.loads(body) == {"k": "pause", "t": 2.5}


def test_a_result_line_starts_with_its_head_where_the_scanner_cuts_it() -> None:
    line = encode(result_record(FULL))
    assert line.startswith(RESULT_START, 9)
    head = orjson.loads(line[HEAD_OFFSET : line.index(b"]", HEAD_OFFSET) + 1])
    assert head == ["openai:gpt-4o-mini", "ticket-7", 7, "failed", 0.00042, 120, 40, 100]


def test_a_full_result_round_trips() -> None:
    [record] = [orjson.loads(encode(result_record(FULL))[9:])]
    assert result_from_record(record) == FULL


def test_a_minimal_result_leaves_out_empty_fields() -> None:
    bare = ItemResult(id="a", model="m", status="skipped", line=2, fields={})
    record = result_record(bare)
    assert record == {"k": "result", "head": ["m", "a", 2, "skipped", 0.0, 0, 0, 0]}
    assert result_from_record(record) == bare


def test_fields_of_any_mapping_type_are_written() -> None:
    item = ItemResult(id="a", model="m", status="ok", line=1, fields=MappingProxyType({"x": 1}))
    assert orjson.loads(encode(result_record(item))[9:])["fields"] == {"x": 1}


def test_empty_output_is_kept_apart_from_no_output() -> None:
    assert result_from_record(result_record(result(output=""))).output == ""
    assert result_from_record(result_record(result())).output is None


_text = st.text(max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_errors = st.builds(ErrorInfo, st.sampled_from(["timeout", "rate_limited", "bad_request"]), _text)
_results = st.builds(
    ItemResult,
    id=_text,
    model=_text,
    status=st.sampled_from(["ok", "failed", "skipped"]),
    line=st.integers(0, 10**9),
    fields=st.dictionaries(_text, _json, max_size=4),
    output=st.none() | _text,
    parsed=_json,
    usage=st.builds(Usage, st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7)),
    cost_usd=st.floats(0, 100, allow_nan=False),
    latency_ms=st.floats(0, 10**6, allow_nan=False),
    attempts=st.integers(0, 20),
    error=st.none() | _errors,
    attempt_errors=st.lists(_errors, max_size=3).map(tuple),
    finish_reason=st.none() | _text,
    simulated=st.booleans(),
    prompt_override=st.none() | _text,
)


@settings(deadline=None)
@given(_results)
def test_any_result_round_trips_through_a_line(item: ItemResult) -> None:
    line = encode(result_record(item))
    assert line.count(b"\n") == 1
    assert result_from_record(orjson.loads(line[9:])) == item


def test_every_record_kind_round_trips(tmp_path: Path) -> None:
    batch = BatchRecord(
        "tok-1", "openai:gpt-4o-mini", "submitting", 3.0, 3.0,
        items=(BatchEntry("j1-l0", "a", 0, 7), BatchEntry("j1-l1", "b", 1, 7, b"k" * 16)),
    )  # fmt: skip
    records = [
        session_record(resumed=False, t=2.0),
        pause_record(t=3.0),
        resume_record(t=4.0),
        result_record(FULL),
        stop_record("max_cost", t=5.0),
        batch_record(batch, with_items=True),
        finish_record("capped", t=6.0),
    ]
    path = write_log(tmp_path / "log.jsonl", records)
    header, *rest = read_records(path)
    assert header == {
        "k": "header",
        "v": FORMAT_VERSION,
        "t": 1.0,
        "run_id": "run-1",
        "config": "c" * 64,
        "input": None,
    }
    assert rest == records
    assert [r["k"] for r in rest] == [
        "session",
        "pause",
        "resume",
        "result",
        "stop",
        "batch",
        "finish",
    ]
    assert result_from_record(rest[3]) == FULL
    assert batch_from_record(rest[5]) == batch


def test_a_batch_update_keeps_the_items_and_job_of_its_intent(tmp_path: Path) -> None:
    intent = BatchRecord(
        "tok-9", "anthropic:claude", "submitting", 1.0, 1.0,
        items=(BatchEntry("j1-l0", "x", 0, 5), BatchEntry("j1-l1", "y", 1, 6)),
    )  # fmt: skip
    running = BatchRecord("tok-9", "anthropic:claude", "running", 2.0, 1.0, job_id="msgbatch_9")
    ended = BatchRecord(
        "tok-9", "anthropic:claude", "ended", 9.0, 1.0, provider_state="ended", closed=True
    )
    path = write_log(
        tmp_path / "log.jsonl",
        [batch_record(intent, with_items=True), batch_record(running), batch_record(ended)],
    )
    assert "items" not in list(read_records(path))[-1]
    assert scan(path).batches == {
        "tok-9": BatchRecord(
            "tok-9", "anthropic:claude", "ended", 9.0, 1.0, job_id="msgbatch_9",
            items=intent.items, provider_state="ended", closed=True,
        )
    }  # fmt: skip


@pytest.mark.parametrize(
    "entry",
    [
        ["c", "id", -1, 5],
        ["c", "id", 1, -5],
        ["c", 3, 1, 5],
        ["c", "id", 1],
        "c",
        ["c", "id", 1, 5, "not hex"],
        ["c", "id", 1, 5, ""],
        ["c", "id", 1, 5, "ab", "cd"],
    ],
)
def test_a_batch_entry_out_of_bounds_is_corrupt(entry: object) -> None:
    rec = {"k": "batch", "t": 1.0, "token": "t", "model": "m", "state": "running", "since": 1.0}
    with pytest.raises(LogCorrupt, match="malformed batch"):
        batch_from_record({**rec, "items": [entry]})


def test_a_result_record_without_a_head_is_corrupt() -> None:
    with pytest.raises(LogCorrupt, match="malformed result"):
        result_from_record({"k": "result"})


# -- fingerprints ------------------------------------------------------------------------


def test_config_fingerprint_ignores_key_order() -> None:
    assert config_fingerprint({"a": 1, "b": [1, 2]}) == config_fingerprint({"b": [1, 2], "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})


def test_the_input_fingerprint_follows_the_bytes_not_the_mtime(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": "a", "label": "cat"}\n')
    header = header_record("r", config="c", input=input_fingerprint(source))
    assert header["input"]["size"] == 28 and len(header["input"]["sha256"]) == 64
    os.utime(source, ns=(1, 1))
    assert fingerprint_matches(header, source)
    source.write_bytes(b'{"id": "a", "label": "dog"}\n')  # same size, one word changed
    assert not fingerprint_matches(header, source)
    source.write_bytes(b"{}\n")
    assert not fingerprint_matches(header, source)
    assert not fingerprint_matches(header, tmp_path / "missing.jsonl")
    assert not fingerprint_matches(header_record("r", config="c", input=None), source)


# -- scan --------------------------------------------------------------------------------


@pytest.fixture(params=["in-process", "checked-by-a-child"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a scan test on both paths: a small log, and a big one whose checksums a child checks."""
    if request.param == "checked-by-a-child":
        monkeypatch.setattr(_verify, "PARALLEL_MIN_BYTES", 0)
    return str(request.param)


def test_scan_counts_the_latest_record_of_each_pair_and_every_cost(
    tmp_path: Path, mode: str
) -> None:
    spent: dict[str, Any] = {"cost_usd": 0.5, "usage": Usage(10, 5, 2)}
    path = results_log(
        tmp_path / "log.jsonl",
        [
            result("a", "failed", line=1, error=ErrorInfo("timeout", "slow"), **spent),
            result("b", "ok", line=2, **spent),
            result("c", "skipped", line=3),
            result("d", "ok", line=4, **spent),
            result("a", "ok", line=1, **spent),  # failed, then ok on --retry-failed
            result("d", "failed", line=4, **spent),  # ok, then failed: the latest still wins
            result("a", "ok", line=1, model="m2"),
        ],
    )
    for index in INDEXES:
        state = scan(path, index=index)
        assert state.by_model["simulate:gpt-4o-mini"].ok == 2
        assert (state.ok, state.failed, state.skipped) == (3, 1, 1)
        assert state.by_model["m2"].total == 1
        assert state.result_records == 7 and state.records == 8
        assert state.cost_usd == pytest.approx(2.5)
        assert (state.input_tokens, state.output_tokens, state.cached_tokens) == (50, 25, 10)
        status = state.status
        model = "simulate:gpt-4o-mini"
        assert [status(model, i, n) for i, n in [("a", 1), ("b", 2), ("c", 3), ("d", 4)]] == [
            "ok",
            "ok",
            "skipped",
            "failed",
        ]
        assert status(model, "zz", 9) is None and status("m3", "a", 1) is None


def test_the_line_index_answers_only_for_the_item_logged_at_that_line(tmp_path: Path) -> None:
    path = results_log(tmp_path / "log.jsonl", [result("a", line=5)])
    state = scan(path)
    assert state.status("simulate:gpt-4o-mini", "a", 5) == "ok"
    assert state.status("simulate:gpt-4o-mini", "other", 5) is None
    assert state.status("simulate:gpt-4o-mini", "a", 6) is None
    assert scan(path, index="id").status("simulate:gpt-4o-mini", "a", 6) == "ok"


def test_ids_with_brackets_and_quotes_take_the_slow_path_and_still_count(tmp_path: Path) -> None:
    ids = ["a]b", '"]', "x\\", "]", "née"]
    path = results_log(tmp_path / "log.jsonl", [result(i, line=n) for n, i in enumerate(ids, 1)])
    for index in INDEXES:
        state = scan(path, index=index)
        assert state.ok == len(ids)
        assert all(state.status("simulate:gpt-4o-mini", i, n) == "ok" for n, i in enumerate(ids, 1))
    assert [r.id for r in iter_results(path)] == ids


@pytest.mark.parametrize(
    ("lifecycle", "expected"),
    [
        ([], "new"),
        ([session_record(resumed=False)], "interrupted"),
        ([session_record(resumed=False), pause_record()], "paused"),
        ([session_record(resumed=False), pause_record(), resume_record()], "interrupted"),
        ([session_record(resumed=False), stop_record("interrupt")], "stopped"),
        (
            [session_record(resumed=False), stop_record("max_cost"), finish_record("capped")],
            "capped",
        ),
        ([session_record(resumed=False), finish_record("finished")], "finished"),
        ([finish_record("finished"), session_record(resumed=True)], "interrupted"),
    ],
)
def test_the_last_lifecycle_record_gives_the_run_state(
    tmp_path: Path, lifecycle: list[dict[str, Any]], expected: str
) -> None:
    state = scan(write_log(tmp_path / "log.jsonl", lifecycle))
    assert state.run_state == expected
    assert state.header is not None and state.header["run_id"] == "run-1"


def test_an_empty_log_has_no_header_and_no_state(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"")
    state = scan(path)
    assert state.header is None and state.records == 0 and state.run_state == "new"


def test_a_log_must_start_with_one_header(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(encode(pause_record()))
    with pytest.raises(LogCorrupt, match="does not start with a header"):
        scan(path)
    path.write_bytes(encode(header_record("a", config="c", input=None)) * 2)
    with pytest.raises(LogCorrupt, match="line 2: a second header"):
        scan(path)


def test_a_log_from_a_newer_batchdeck_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(
        encode({**header_record("a", config="c", input=None), "v": FORMAT_VERSION + 1})
    )
    with pytest.raises(LogError, match="format version"):
        scan(path)


def test_a_valid_checksum_over_a_bad_record_names_its_line(tmp_path: Path, mode: str) -> None:
    def all_records(path: Path) -> None:
        list(read_records(path))

    def all_results(path: Path) -> None:
        list(iter_results(path))

    header = encode(header_record("a", config="c", input=None))
    cases: list[tuple[bytes, list[Callable[[Path], object]]]] = [
        (b"[1, 2]", [scan, all_records]),
        (b'{"k":"result","head":[1]}', [scan, all_results]),
        (b'{"k":"result","head":["m","i",-1,"ok",0,0,0,0]}', [scan]),
        (b'{"k":"result","head":["m","i",1,"ok","x",0,0,0]}', [scan]),
    ]
    path = tmp_path / "log.jsonl"
    for bad, readers in cases:
        path.write_bytes(header + encode(pause_record()) + b"%08x %b\n" % (zlib.crc32(bad), bad))
        for read in readers:
            with pytest.raises(LogCorrupt, match=r"log\.jsonl, line 3: "):
                read(path)


def test_scan_reports_a_bad_tail_without_touching_the_file(tmp_path: Path, mode: str) -> None:
    path = results_log(tmp_path / "log.jsonl", [result("a")])
    clean = path.read_bytes()
    path.write_bytes(clean + b'0badc0de {"k":"res')
    state = scan(path)
    assert (state.valid_bytes, state.tail_bytes, state.ok) == (len(clean), 18, 1)
    assert path.read_bytes() == clean + b'0badc0de {"k":"res'


def test_a_damaged_record_before_valid_ones_is_never_skipped(tmp_path: Path, mode: str) -> None:
    path = results_log(tmp_path / "log.jsonl", [result(str(i), line=i) for i in range(1, 6)])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"3"', b'"X"')  # line 4 holds the result of item "3"
    path.write_bytes(b"".join(lines))
    for read in (scan, lambda p: list(read_records(p)), lambda p: list(iter_results(p))):
        with pytest.raises(LogCorrupt, match=r"line 4 is damaged but valid records follow"):
            read(path)


def test_when_the_checking_child_cannot_run_the_check_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_verify, "PARALLEL_MIN_BYTES", 0)
    path = results_log(tmp_path / "log.jsonl", [result(str(i), line=i) for i in range(1, 4)])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"0" + lines[2][1:]
    path.write_bytes(b"".join(lines))
    for executable in ("/nonexistent/python", "/bin/false"):
        monkeypatch.setattr(_verify.sys, "executable", executable)
        with pytest.raises(LogCorrupt, match="line 3 is damaged but valid records follow"):
            scan(path)


# -- readers -----------------------------------------------------------------------------


def test_iter_results_yields_the_latest_result_of_each_pair_in_first_seen_order(
    tmp_path: Path,
) -> None:
    path = results_log(
        tmp_path / "log.jsonl",
        [
            result("a", "failed", line=1, attempts=3),
            result("b", line=2),
            result("c", "failed", line=3),
            result("a", line=1, output="second try"),
            result("b", "ok", line=2, model="m2"),
            result("c", "failed", line=3, attempts=9),
            result("a", line=1, output="third"),
        ],
    )
    got = [(r.model[:2], r.id, r.status, r.output, r.attempts) for r in iter_results(path)]
    assert got == [
        ("si", "a", "ok", "third", 0),
        ("si", "b", "ok", None, 0),
        ("si", "c", "failed", None, 9),
        ("m2", "b", "ok", None, 0),
    ]


def test_iter_results_stops_at_the_valid_prefix(tmp_path: Path) -> None:
    path = results_log(tmp_path / "log.jsonl", [result("a"), result("b", line=2)])
    with path.open("ab") as f:
        f.write(encode(result_record(result("c", line=3)))[:-5])
    assert [r.id for r in iter_results(path)] == ["a", "b"]
    assert [r["k"] for r in read_records(path)] == ["header", "result", "result"]


# -- the writer --------------------------------------------------------------------------


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Record every os.write and os.fsync as ("write"|"fsync", "file"|"dir")."""
    calls: list[tuple[str, str]] = []
    real_write, real_fsync = os.write, os.fsync

    def kind(fd: int) -> str:
        return "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"

    def write(fd: int, data: Any) -> int:
        calls.append(("write", kind(fd)))
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append(("fsync", kind(fd)))
        real_fsync(fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    yield calls


def test_create_writes_and_fsyncs_the_header_then_fsyncs_the_dir(
    tmp_path: Path, syscalls: list[tuple[str, str]]
) -> None:
    path = tmp_path / "log.jsonl"
    LogWriter.create(path, header_record("r", config="c", input=None), durability="flush").close()
    assert syscalls == [("write", "file"), ("fsync", "file"), ("fsync", "dir")]
    assert [r["k"] for r in read_records(path)] == ["header"]


def test_create_never_reuses_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"precious")
    with pytest.raises(LogWriteError, match="cannot create checkpoint log"):
        LogWriter.create(path, header_record("r", config="c", input=None), durability="fsync")
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize(("durability", "fsyncs"), [("fsync", 1), ("flush", 0)])
def test_a_group_is_one_write_and_at_most_one_fsync(
    tmp_path: Path, syscalls: list[tuple[str, str]], durability: Any, fsyncs: int
) -> None:
    path = tmp_path / "log.jsonl"
    writer = LogWriter.create(
        path, header_record("r", config="c", input=None), durability=durability
    )
    syscalls.clear()
    writer.write_group([encode(result_record(result(str(i), line=i))) for i in range(200)])
    assert syscalls == [("write", "file")] + [("fsync", "file")] * fsyncs
    syscalls.clear()
    writer.write_now(encode(pause_record()))  # pause, stop, finish: fsynced whatever the setting
    assert syscalls == [("write", "file"), ("fsync", "file")]
    syscalls.clear()
    writer.write_group([])
    assert syscalls == []
    writer.close()
    assert scan(path).ok == 200


def test_a_short_write_is_continued_until_the_whole_group_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.jsonl"
    writer = LogWriter.create(path, header_record("r", config="c", input=None), durability="fsync")
    real_write = os.write
    sizes: list[int] = []

    def half_write(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data[: max(1, len(data) // 2)]))

    monkeypatch.setattr(os, "write", half_write)
    lines = [encode(result_record(result(str(i), line=i))) for i in range(50)]
    writer.write_group(lines)
    writer.close()
    assert len(sizes) > 5 and sizes[0] == len(b"".join(lines))
    assert path.read_bytes().endswith(b"".join(lines))
    assert scan(path).ok == 50


def _broken_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> tuple[LogWriter, list[str]]:
    writer = LogWriter.create(
        tmp_path / "log.jsonl", header_record("r", config="c", input=None), durability="fsync"
    )
    calls: list[str] = []

    def failing(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            calls.append(name)
            if name == fail:
                code = errno.EIO if name == "fsync" else errno.ENOSPC
                raise OSError(code, os.strerror(code))
            return real[name](*args)

        return call

    real: dict[str, Callable[..., Any]] = {"write": os.write, "fsync": os.fsync}
    monkeypatch.setattr(os, "write", failing("write"))
    monkeypatch.setattr(os, "fsync", failing("fsync"))
    return writer, calls


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ("fsync", "fsync failed, and is never retried: Input/output error"),
        ("write", "cannot write to it: No space left on device"),
    ],
)
def test_a_failed_write_or_fsync_breaks_the_writer_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str, message: str
) -> None:
    writer, calls = _broken_writer(tmp_path, monkeypatch, fail)
    line = encode(result_record(result()))
    with pytest.raises(LogWriteError, match=message) as raised:
        writer.write_group([line])
    assert "\n" not in str(raised.value)
    assert writer.broken
    calls.clear()
    with pytest.raises(LogWriteError, match="unusable after an earlier error"):
        writer.write_group([line])
    with pytest.raises(LogWriteError, match="unusable after an earlier error"):
        writer.write_now(line)
    assert calls == []  # no second write, and above all no second fsync
    writer.close()  # closes quietly: the error was raised already


def test_a_write_that_makes_no_progress_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LogWriter.create(
        tmp_path / "log.jsonl", header_record("r", config="c", input=None), durability="fsync"
    )
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(LogWriteError, match="no progress"):
        writer.write_group(b"x\n")
    writer.close()


def test_a_closed_writer_refuses_to_write(tmp_path: Path) -> None:
    writer = LogWriter.create(
        tmp_path / "log.jsonl", header_record("r", config="c", input=None), durability="fsync"
    )
    writer.close()
    writer.close()
    with pytest.raises(LogWriteError, match="is closed"):
        writer.write_group([encode(pause_record())])


def test_open_append_appends_and_refuses_a_missing_log(tmp_path: Path) -> None:
    path = results_log(tmp_path / "log.jsonl", [result("a")])
    with LogWriter.open_append(path, durability="fsync") as writer:
        writer.write_group(encode(result_record(result("b", line=2))))
    assert scan(path).ok == 2
    with pytest.raises(LogWriteError, match="cannot open checkpoint log"):
        LogWriter.open_append(tmp_path / "nope.jsonl", durability="fsync")


def test_groups_from_several_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    writer = LogWriter.create(path, header_record("r", config="c", input=None), durability="flush")

    def work(n: int) -> None:
        for g in range(20):
            ids = [f"{n}-{g}-{i}" for i in range(50)]
            writer.write_group([encode(result_record(result(i, output="x" * 500))) for i in ids])
            writer.write_now(encode(pause_record()))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    state = scan(path, index="id")
    assert state.ok == 4 * 20 * 50 and state.tail_bytes == 0


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.sampled_from(["ok", "failed", "skipped"])),
        max_size=12,
    )
)
def test_scan_and_iter_results_agree_with_a_latest_wins_replay(
    history: list[tuple[str, str]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = [result(i, s, line="abcd".index(i) + 1, cost_usd=1.0) for i, s in history]
        path = results_log(Path(tmp) / "log.jsonl", rows)
        latest: dict[str, str] = {}
        for i, s in history:
            latest[i] = s
        for index in INDEXES:
            state = scan(path, index=index)
            assert state.cost_usd == len(history)
            for i in "abcd":
                assert state.status("simulate:gpt-4o-mini", i, "abcd".index(i) + 1) == latest.get(i)
            assert (state.ok, state.failed, state.skipped) == tuple(
                list(latest.values()).count(s) for s in ("ok", "failed", "skipped")
            )
        assert [(r.id, r.status) for r in iter_results(path)] == list(latest.items())


def test_an_items_spend_is_its_results_and_the_paid_attempts_no_result_of_theirs_followed(
    tmp_path: Path,
) -> None:
    """A result sums its own session's paid attempts; those a session ended without a
    result for (a kill) are spent on the item apart from any later result; a retried
    pair's every result counts."""

    def paid(id: str, cost: float) -> dict[str, Any]:
        return paid_record("simulate:gpt-4o-mini", id, 1, cost, Usage(10, 1))

    path = write_log(
        tmp_path / "log.jsonl",
        [
            session_record(resumed=False),
            paid("a", 0.01), result_record(result("a", cost_usd=0.015)),  # includes the paid
            paid("b", 0.02), paid("b", 0.03),  # killed before b's result
            session_record(resumed=True),
            result_record(result("b", "failed", cost_usd=0.1)),
            result_record(result("b", cost_usd=0.2)),  # retried: both results were paid
            paid("c", 0.04),  # the log ends: killed again
        ],
    )  # fmt: skip
    assert item_spend(path) == {
        "a": pytest.approx(0.015),
        "b": pytest.approx(0.35),
        "c": pytest.approx(0.04),
    }
    assert set(item_spend(path, lambda id, line: id != "b")) == {"a", "c"}
