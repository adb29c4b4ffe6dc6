"""Opening an input and cutting it into bounded physical lines.

Only a regular file or standard input (``-``) is an input: a FIFO, a device
(``/dev/zero``, ``/dev/urandom``), a socket or a terminal never ends or blocks
forever, so each is refused with one line. The check is made on the path before
a run starts and again on the opened descriptor (opened non-blocking, so a FIFO
cannot hang the open itself), so a file swapped for one in between is refused too.

Everything is read in binary and decoded per line, so one line of bad UTF-8
spoils that line only. ``readline(limit)`` bounds every read: an over-long line
is reported as ``None`` and skipped in chunks of the same bound, so a file with
one huge line costs no more memory than any other.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, Final

from engine._errors import InputError
from engine.readers._format import STDIN

BOM: Final = b"\xef\xbb\xbf"


def display_name(path: str) -> str:
    """How messages name the input."""
    return "stdin" if path == STDIN else path


def check_input(path: str) -> None:
    """Raise ``InputError`` with one line if ``path`` cannot be read as an input at all.

    Covers a missing file, a directory or any other file that is not a regular
    one, an unreadable file, an empty file, and standard input left on a terminal.
    An input with no usable item is only known by reading it: ``read_items``
    raises then.
    """
    if path == STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("stdin is a terminal: pipe items in, e.g. `cat items.jsonl | ...`")
        return
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read input file {path}: {exc.strerror}") from None
    _check_regular(info.st_mode, path)
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read input file {path}: permission denied")
    if info.st_size == 0:
        raise InputError(f"input file is empty: {path}")


def _check_regular(mode: int, path: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError(f"input is a directory, not a file: {path}")
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
    raise InputError(
        f"input {path} is {kind}: only a regular file, or - for stdin, can be an input"
    )


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """The input as a binary stream; standard input is borrowed, never closed."""
    if path == STDIN:
        yield sys.stdin.buffer
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read input file {path}: {exc.strerror}") from None
    with open(fd, "rb") as stream:
        _check_regular(os.fstat(fd).st_mode, path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        yield stream


def physical_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[bytes | None]:
    """Each line with its ending, or ``None`` for a line over ``max_line_bytes`` (ending included).

    A UTF-8 byte order mark at the very start is dropped.
    """
    limit = max_line_bytes + 1
    readline = stream.readline
    first = readline(limit)
    if first.startswith(BOM):
        first = first[len(BOM) :]
    raw = first
    while raw:
        if len(raw) <= max_line_bytes:
            yield raw
        else:
            while not raw.endswith(b"\n"):
                raw = readline(limit)
                if not raw:
                    break
            yield None
        raw = readline(limit)


def count_lines(stream: BinaryIO, *, max_line_bytes: int) -> int:
    """Non-blank lines: how many records a line-per-item reader yields, without parsing them."""
    return sum(
        1 for raw in physical_lines(stream, max_line_bytes) if raw is None or not raw.isspace()
    )
