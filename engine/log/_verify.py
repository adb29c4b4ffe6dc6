"""Checking a big log's checksums in a second process while ``scan`` parses it.

zlib's CRC-32 runs at ~1.5 GB/s on these machines: on a million-record log
(~700 MB) the checksums alone cost about a second of resume's three, and a
Python thread cannot share them out (zlib holds the GIL below 5 KB). So for a
big log, ``scan`` finds the end of the valid prefix from the end of the file
(``valid_end``: only the tail is read), starts a child interpreter that checks
every line of that prefix, and parses the same bytes meanwhile on the other
core. Nothing the parse found counts until the child says the prefix is
intact: a damaged line still raises LogCorrupt naming it, whatever the parse
made of it. If the child cannot run, the check runs here, after the parse.

The child runs ``main`` with the log and END as arguments: it prints the
damage, or nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from engine._errors import LogCorrupt
from engine.log._format import ValidLines

PARALLEL_MIN_BYTES = 32 << 20
"""Logs smaller than this are checked in-process: starting a child costs ~50 ms."""

_ROOT = str(Path(__file__).resolve().parents[2])
"""The directory holding the ``engine`` package, for the child's import path."""
_CHILD = "from engine.log._verify import main; main()"


def damage(path: str | os.PathLike[str], end: int) -> str | None:
    """The LogCorrupt message for the first damaged line of the log's first ``end`` bytes."""
    with open(path, "rb", buffering=0) as f:
        lines = ValidLines(f, path, end=end)
        try:
            for _ in lines:
                pass
        except LogCorrupt as exc:
            return str(exc)
    if lines.valid_bytes < end:  # the prefix should end with a valid line: it changed under us
        return f"checkpoint log {path}: line {lines.bad_line} is damaged"
    return None


class Checker:
    """``damage(path, end)`` computed by a child process; a context manager that reaps it."""

    def __init__(self, path: Path, end: int) -> None:
        self._path, self._end = path, end
        paths = [_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        try:
            self._child: subprocess.Popen[str] | None = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(path), str(end)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        except OSError:
            self._child = None

    def __enter__(self) -> Checker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        child = self._child
        if child is not None and child.returncode is None:  # no verdict taken: an error
            child.kill()
            child.communicate()

    def raise_damage(self) -> None:
        """Wait for the verdict; LogCorrupt if the prefix holds a damaged line."""
        found: str | None
        child = self._child
        output, _ = child.communicate() if child is not None else ("", None)
        if child is not None and child.returncode == 0:
            found = output.strip() or None
        else:
            found = damage(self._path, self._end)
        if found is not None:
            raise LogCorrupt(found)


def main() -> None:
    found = damage(sys.argv[1], int(sys.argv[2]))
    if found is not None:
        print(found)
