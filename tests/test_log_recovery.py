"""Recovery of a checkpoint log after a crash: every truncation, zeros, garbage, damage."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._errors import LogCorrupt, LogWriteError
from engine._results import ItemResult
from engine.log import (
    LogWriter,
    _format,
    _recovery,
    encode,
    header_record,
    read_records,
    recover,
    result_record,
    scan,
    session_record,
)

_ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6)


def log_lines(ids: list[str]) -> list[bytes]:
    """A header, a session and one result per id: the lines of a small log."""
    records = [
        header_record("r", config="c", input=None, t=1.0),
        session_record(resumed=False, t=2.0),
    ]
    records += [
        result_record(ItemResult(id=i, model="m", status="ok", line=n, fields={"id": i}))
        for n, i in enumerate(ids, 1)
    ]
    return [encode(r) for r in records]


_chunks = st.sampled_from([1, 7, 64, _format.CHUNK_BYTES])
"""Read sizes: tiny ones make lines and tails straddle chunks, as big logs do."""


@contextmanager
def scratch(chunk: int = _format.CHUNK_BYTES) -> Iterator[Path]:
    """A temporary dir per hypothesis example, with fsync stubbed out: this is about bytes."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(os, "fsync"),
        mock.patch.object(_format, "CHUNK_BYTES", chunk),
        mock.patch.object(_recovery, "CHUNK_BYTES", chunk),
    ):
        yield Path(tmp)


def side_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bad-*"))


@settings(max_examples=12, deadline=None)
@given(st.lists(_ids, min_size=1, max_size=3), _chunks)
def test_a_log_cut_at_any_byte_keeps_exactly_its_complete_records(
    ids: list[str], chunk: int
) -> None:
    lines = log_lines(ids)
    data = b"".join(lines)
    ends = [sum(map(len, lines[: n + 1])) for n in range(len(lines))]
    with scratch(chunk) as tmp:
        path = tmp / "log.jsonl"
        for cut in range(len(data) + 1):
            kept = sum(1 for end in ends if end <= cut)
            valid = ends[kept - 1] if kept else 0
            path.write_bytes(data[:cut])
            state = scan(path)
            assert (state.records, state.valid_bytes) == (kept, valid)
            assert state.tail_bytes == cut - valid
            recovery = recover(path)
            assert (recovery.valid_bytes, recovery.bad_bytes) == (valid, cut - valid)
            assert path.read_bytes() == data[:valid]
            if cut == valid:
                assert recovery.side_file is None and side_files(path) == []
            else:
                assert recovery.side_file == side_files(path)[0]
                assert recovery.side_file.read_bytes() == data[valid:cut]
                recovery.side_file.unlink()
            assert len(list(read_records(path))) == kept
            assert recover(path).bad_bytes == 0  # a recovered log is clean


@settings(max_examples=40, deadline=None)
@given(
    st.lists(_ids, min_size=1, max_size=4),
    st.one_of(
        st.integers(1, 70_000).map(bytes),  # zeros, from a few bytes to more than a chunk
        st.binary(min_size=1, max_size=3000),
        st.binary(max_size=200).map(lambda b: b"\n" + b + b"\n"),
    ),
    _chunks,
)
def test_zeros_or_garbage_after_the_last_record_move_to_a_side_file(
    ids: list[str], garbage: bytes, chunk: int
) -> None:
    data = b"".join(log_lines(ids))
    with scratch(chunk) as tmp:
        path = tmp / "log.jsonl"
        path.write_bytes(data + garbage)
        state = scan(path)
        assert (state.valid_bytes, state.tail_bytes) == (len(data), len(garbage))
        recovery = recover(path)
        assert path.read_bytes() == data
        assert recovery.valid_bytes == len(data) and recovery.bad_bytes == len(garbage)
        assert recovery.side_file is not None and recovery.side_file.read_bytes() == garbage
        assert scan(path).result_records == len(ids)


def test_a_torn_record_with_garbage_after_it_moves_as_one_tail(tmp_path: Path) -> None:
    lines = log_lines(["a", "b", "c"])
    torn = lines[-1][:-1]  # complete but for its newline: still torn
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(lines[:-1]) + torn)
    recovery = recover(path)
    assert recovery.side_file is not None and recovery.side_file.read_bytes() == torn
    assert recovery.message is not None and f"{len(torn)} damaged bytes" in recovery.message
    path.write_bytes(b"".join(lines[:-1]) + torn[:30] + b"\n\x00\x00garbage\n" + b"\x00" * 4096)
    recovery = recover(path)
    assert recovery.valid_bytes == len(b"".join(lines[:-1]))
    assert len(side_files(path)) == 2  # a second recovery in the same second: its own side file


def test_a_log_with_no_valid_record_is_cut_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\x00" * 100)
    recovery = recover(path)
    assert (recovery.valid_bytes, recovery.bad_bytes) == (0, 100)
    assert path.read_bytes() == b"" and scan(path).header is None
    assert recover(path) == recover(path)  # empty and clean


def test_recovery_then_append_gives_one_clean_log(tmp_path: Path) -> None:
    lines = log_lines(["a", "b"])
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(lines) + lines[-1][:20])
    recover(path)
    with LogWriter.open_append(path, durability="fsync") as writer:
        writer.write_group(log_lines(["a", "b", "c"])[-1])
    state = scan(path)
    assert state.ok == 2 + 1 and state.tail_bytes == 0


@pytest.mark.parametrize("line", [1, 3, 4])
def test_damage_before_the_last_record_is_left_in_place_and_named(
    tmp_path: Path, line: int
) -> None:
    lines = log_lines(["a", "b", "c"])
    damaged = list(lines)
    damaged[line - 1] = b"\x00" * (len(lines[line - 1]) - 1) + b"\n"
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(damaged) + lines[-1][:10])  # and a torn tail
    recovery = recover(path)
    assert recovery.bad_bytes == 10  # only the tail goes; the damage is not recovery's to cut
    assert path.read_bytes() == b"".join(damaged)
    with pytest.raises(LogCorrupt, match=f"line {line} is damaged but valid records follow"):
        scan(path)


@settings(max_examples=30, deadline=None)
@given(st.lists(_ids, min_size=2, max_size=4), st.data(), _chunks)
def test_any_flipped_byte_before_the_last_record_is_reported_by_its_line(
    ids: list[str], data: st.DataObject, chunk: int
) -> None:
    lines = log_lines(ids)
    target = data.draw(st.integers(0, len(lines) - 2), label="line index")
    at = data.draw(st.integers(0, len(lines[target]) - 2), label="byte")  # not its newline
    flip = data.draw(st.integers(1, 255), label="xor")
    damaged = bytearray(lines[target])
    damaged[at] ^= flip
    with scratch(chunk) as tmp:
        path = tmp / "log.jsonl"
        path.write_bytes(b"".join(lines[:target]) + bytes(damaged) + b"".join(lines[target + 1 :]))
        with pytest.raises(LogCorrupt, match=f"line {target + 1} is damaged"):
            scan(path)
        assert recover(path).bad_bytes == 0


def test_a_failed_side_file_leaves_the_log_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = log_lines(["a"])
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(lines) + b"torn")

    def no_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(LogWriteError, match="cannot recover checkpoint log .*Input/output error"):
        recover(path)
    assert path.read_bytes() == b"".join(lines) + b"torn"
