"""The checkpoint log's writer: one ``write`` per group, and no second chances.

The engine's group-commit task gathers the lines of many results and hands
them over with ``write_group`` from a worker thread (``anyio.to_thread``), so
this class is plain blocking code that never touches the event loop; a lock
keeps a ``write_now`` from another thread from interleaving with a group.

A group goes to the kernel in one ``os.write`` (continued after a short write,
which regular files rarely do but may on a full disk or a signal), then one
``fsync`` under ``durability="fsync"``. With ``"flush"`` there is no fsync: a
crash of the process loses nothing, a power loss may lose the last groups.
``write_now`` is for pause/stop/finish and fsyncs whatever the durability.

A log deleted while it is written (``rm -r`` of its run dir) would take
every later group with it unseen: each write first checks that the file still
has a name (``fstat``'s link count, a microsecond) and stops the run if not.

Any ``OSError`` breaks the writer for good and raises ``LogWriteError``. An
fsync that failed may have dropped the dirty pages it could not write and
cleared the error, so a retry would "succeed" over lost data (PostgreSQL's
fsyncgate, 2018): the only safe move is to stop, and recover from the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn

from engine._atomic import PRIVATE, fsync_dir
from engine._errors import LogWriteError
from engine.log._format import encode

Durability = Literal["fsync", "flush"]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC


class LogWriter:
    """Appends lines to one checkpoint log. Build it with ``create`` or ``open_append``."""

    __slots__ = ("_broken", "_durability", "_fd", "_lock", "path")

    def __init__(self, fd: int, path: Path, durability: Durability) -> None:
        self._fd: int | None = fd
        self.path = path
        self._durability = durability
        self._broken: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], header: Mapping[str, Any], *, durability: Durability
    ) -> LogWriter:
        """Create a new log (never an existing one), write and fsync ``header``, fsync the dir."""
        path = Path(path)
        try:
            fd = os.open(path, _CREATE_FLAGS, PRIVATE)
        except OSError as exc:
            raise LogWriteError(f"cannot create checkpoint log {path}: {exc.strerror}") from exc
        writer = cls(fd, path, durability)
        try:
            writer.write_now(encode(header))
            try:
                fsync_dir(path.parent)
            except OSError as exc:
                writer._break(f"cannot fsync its directory {path.parent}", exc)
        except LogWriteError:
            writer.close()
            raise
        return writer

    @classmethod
    def open_append(cls, path: str | os.PathLike[str], *, durability: Durability) -> LogWriter:
        """Open an existing log to append to it; run ``recover`` on it first."""
        path = Path(path)
        try:
            fd = os.open(path, _APPEND_FLAGS)
        except OSError as exc:
            raise LogWriteError(f"cannot open checkpoint log {path}: {exc.strerror}") from exc
        return cls(fd, path, durability)

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def write_group(self, lines: Sequence[bytes] | bytes) -> None:
        """Append encoded lines in one write, then fsync if ``durability == "fsync"``."""
        data = lines if isinstance(lines, bytes) else b"".join(lines)
        if not data:
            return
        with self._lock:
            self._write(data, fsync=self._durability == "fsync")

    def write_now(self, line: bytes) -> None:
        """Append and fsync at once, whatever the durability (pause, stop, finish records)."""
        with self._lock:
            self._write(line, fsync=True)

    def close(self) -> None:
        """Close the file. After a failure it closes quietly: the error was raised already."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                os.close(fd)
            except OSError as exc:
                if self._broken is None:
                    self._break("cannot close it", exc)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, data: bytes, *, fsync: bool) -> None:
        fd = self._usable_fd()
        try:
            deleted = os.fstat(fd).st_nlink == 0
        except OSError as exc:
            self._break("cannot stat it", exc)
        if deleted:
            self._broken = "it was deleted, with its run dir or alone, while the run was going"
            raise LogWriteError(f"checkpoint log {self.path}: {self._broken}")
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                if written == 0:
                    raise OSError(0, "the write made no progress")
                view = view[written:]
        except OSError as exc:
            self._break("cannot write to it", exc)
        if fsync:
            try:
                os.fsync(fd)
            except OSError as exc:
                self._break("fsync failed, and is never retried", exc)

    def _usable_fd(self) -> int:
        if self._broken is not None:
            raise LogWriteError(
                f"checkpoint log {self.path} is unusable after an earlier error ({self._broken})"
            )
        if self._fd is None:
            raise LogWriteError(f"checkpoint log {self.path} is closed")
        return self._fd

    def _break(self, what: str, exc: OSError) -> NoReturn:
        self._broken = f"{what}: {exc.strerror or exc}"
        raise LogWriteError(f"checkpoint log {self.path}: {self._broken}") from exc
