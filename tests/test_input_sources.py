"""Inputs that are not regular files: refused with one line, never read forever or hung on."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine._errors import InputError
from engine.readers import check_input, count_items, read_items
from engine.readers._source import open_input
from tests.cli import batchdeck


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "items.jsonl"
    os.mkfifo(path)
    yield path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "items.jsonl"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


@pytest.mark.parametrize(
    ("name", "kind"),
    [("/dev/zero", "a character device"), ("/dev/urandom", "a character device")],
)
def test_devices_are_refused(name: str, kind: str) -> None:
    with pytest.raises(InputError, match=f"input {name} is {kind}: only a regular file"):
        read_items(name, "jsonl")
    with pytest.raises(InputError, match=kind):
        count_items(name, "jsonl")


def test_a_fifo_is_refused_without_opening_it(fifo: Path) -> None:
    with pytest.raises(InputError, match="is a FIFO: only a regular file, or - for stdin"):
        check_input(str(fifo))


def test_a_socket_is_refused(unix_socket: Path) -> None:
    with pytest.raises(InputError, match="is a socket"):
        check_input(str(unix_socket))


def test_a_fifo_swapped_in_after_the_check_is_refused_at_open(fifo: Path) -> None:
    """Opening does not block on a FIFO with no writer, and the descriptor is checked too."""
    done = threading.Event()
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with open_input(str(fifo)):
                outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    if not done.wait(10):
        with open(fifo, "wb"):  # unblock the reader so the thread ends
            pass
        pytest.fail("opening a FIFO blocked")
    assert isinstance(outcome[0], InputError)
    assert "is a FIFO" in str(outcome[0])


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_the_cli_refuses_a_stream_input_with_one_line(
    target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = str(request.getfixturevalue("fifo")) if target == "fifo" else target
    proc = batchdeck("run", path, "--format", "jsonl", "--quiet", home=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "only a regular file, or - for stdin" in proc.stderr
