"""Recovery: cut a log back to its last valid record, moving the bad tail aside.

A crash mid-group leaves a torn last line, or, after a power loss, zeros or
garbage where unsynced blocks were (ALICE, OSDI '14). That tail must go before
anything is appended, but its bytes are never thrown away: they are copied to
a side file next to the log (``<log>.bad-<UTC time>``) and fsynced before the
log is truncated and fsynced, so a crash during recovery loses nothing either,
and the caller reports them in one line.

Recovery reads the log backwards from its end and stops at the first valid
line, so it costs the size of the tail, not of the log: on a million-record
log it is instant when the log is clean, and resume pays for one full pass
(``scan``), not two. Damage *before* the last valid record is not a crash's
tail but harm to records that were acknowledged; recovery leaves it where it
is, and every reader raises LogCorrupt naming its line: never a silent skip.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine._atomic import PRIVATE, fsync_dir
from engine._errors import LogWriteError
from engine.log._format import CHUNK_BYTES, valid_end


@dataclass(frozen=True, slots=True)
class Recovery:
    valid_bytes: int
    """Length of the log after recovery: it ends with its last valid record."""
    bad_bytes: int
    """Bytes cut from the tail (0 when the log was clean)."""
    side_file: Path | None
    """Where the cut bytes went, or None when nothing was cut."""

    @property
    def message(self) -> str | None:
        """One line for the user when a tail was moved aside, else None."""
        if self.side_file is None:
            return None
        return (
            f"checkpoint log: moved {self.bad_bytes} damaged bytes at its end (a write cut"
            f" short by a crash) to {self.side_file}; the items they held will run again"
        )


def recover(path: str | os.PathLike[str]) -> Recovery:
    """Cut ``path`` back to its last valid record, saving what followed to a side file.

    Raises LogWriteError when the side file, the truncation or an fsync fails.
    """
    path = Path(path)
    with open(path, "r+b", buffering=0) as log:
        size = os.fstat(log.fileno()).st_size
        valid = valid_end(log, size)
        if valid == size:
            return Recovery(size, 0, None)
        try:
            side = _save_tail(log, path, valid)
            log.truncate(valid)
            os.fsync(log.fileno())
        except OSError as exc:
            raise LogWriteError(
                f"cannot recover checkpoint log {path}: {exc.strerror or exc}"
            ) from exc
    return Recovery(valid, size - valid, side)


def _save_tail(log: IO[bytes], path: Path, start: int) -> Path:
    """Copy the log from ``start`` to a new side file, durably; return the side file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in itertools.count(1):
        side = path.with_name(f"{path.name}.bad-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE)
        except FileExistsError:
            continue
        break
    with open(fd, "wb") as out:
        log.seek(start)
        while data := log.read(CHUNK_BYTES):
            out.write(data)
        out.flush()
        os.fsync(out.fileno())
    fsync_dir(path.parent)
    return side
