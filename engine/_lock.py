"""One process drives a run: an OS lock on ``<run dir>/lock`` for the whole of an execution.

``flock(2)``, not a pid file: the kernel drops the lock when its process dies,
however it dies (SIGKILL, OOM, a closed laptop), so there is never a stale lock
to guess about or clean up. ``flock``, not ``fcntl``/``lockf`` record locks: a
record lock belongs to the process and is dropped when *any* descriptor of the
file is closed in it, so the app asking "is this run held?" about its own run
would release it; an ``flock`` belongs to one open file, and a second open in
the same process conflicts as another process would.

The holder writes who it is (pid, host, since when) into the file, for the
refusal to name it; the lock, not the text, decides whether the run is held.
The file is never removed: a waiter would then hold a lock on a deleted file
while a newcomer created and locked a fresh one. (``flock`` does not reach
across NFS clients; a run dir on a network share is guarded per machine.)
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from engine._atomic import PRIVATE
from engine._errors import ConfigError, RunBusy

LOCK_NAME = "lock"

_TRIES = 5
_TRY_GAP_S = 0.01
"""A refused attempt is tried again a few times over ~50 ms: ``holder`` takes the lock
shared for an instant to ask, and must not make a real acquirer give up."""


@dataclass(frozen=True, slots=True)
class Holder:
    """The process driving a run, as it wrote itself into the lock file."""

    pid: int
    host: str
    since: str
    """UTC, ISO 8601, to the second."""

    @property
    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def __str__(self) -> str:
        if self == UNKNOWN:
            return "another process"
        return f"pid {self.pid} on {self.host} since {self.since.replace('T', ' ')}"


UNKNOWN = Holder(0, "", "")
"""A holder that has not written itself into the file yet."""


class RunLock:
    """The held lock of one run dir; ``release`` (or the process's death) lets it go."""

    __slots__ = ("_fd", "run_dir")

    def __init__(self, fd: int, run_dir: Path) -> None:
        self._fd: int | None = fd
        self.run_dir = run_dir

    @classmethod
    def acquire(cls, run_dir: Path, *, wait: bool = False) -> RunLock:
        """Hold ``run_dir``'s lock; ``RunBusy`` naming the holder if another open file has it.

        With ``wait`` it blocks until the holder is done; a signal handler that raises
        (Ctrl+C's ``KeyboardInterrupt``) gives up the wait.
        """
        path = run_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        except OSError as exc:
            raise ConfigError(f"cannot lock run {run_dir.name}: {path}: {exc.strerror}") from None
        try:
            if wait:
                fcntl.flock(fd, fcntl.LOCK_EX)
            elif not _try_lock(fd, fcntl.LOCK_EX):
                busy = _read_holder(fd)
                raise RunBusy(
                    f"run {run_dir.name} is being run by {busy}: wait for it "
                    "to end, or add --wait to start when it does",
                    holder=busy,
                )
            me = Holder(os.getpid(), socket.gethostname(), _now())
            os.ftruncate(fd, 0)
            os.pwrite(fd, orjson.dumps({"pid": me.pid, "host": me.host, "since": me.since}), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, run_dir)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file drops the flock


def holder(run_dir: Path) -> Holder | None:
    """The process holding ``run_dir`` (this one included), or None when none does."""
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file: never run since locks exist, or not a run dir
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _try_lock(fd: int, kind: int) -> bool:
    for attempt in range(_TRIES):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt + 1 < _TRIES:
                time.sleep(_TRY_GAP_S)
            continue
        return True
    return False


def _read_holder(fd: int) -> Holder:
    """Who the lock file says holds it; ``UNKNOWN`` when it has not said yet (or cannot)."""
    try:
        data = orjson.loads(os.pread(fd, 4096, 0))
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return UNKNOWN


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
