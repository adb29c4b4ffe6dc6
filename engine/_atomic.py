"""Every file batchdeck writes whole (config, summary, settings, keys, exports) goes through here.

A reader, or a process killed mid-write, sees the old file or the new one, never
a part of either: the bytes go to a temp file in the target's own dir (the same
filesystem, so the rename is atomic), are fsynced, renamed over the target, and
the dir is fsynced so the rename itself survives a power loss. The temp file is
created with ``O_EXCL`` and the mode asked for, which the umask can only narrow:
a private file is never readable by others, not even for an instant. The
checkpoint log is the one file written otherwise (appended in groups by
``engine.log``), and it shares ``fsync_dir`` from here.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600
"""The mode of every file in a run dir and of the app's own files."""


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory ``path`` (a new file, a rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, *, mode: int = PRIVATE) -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``path`` when the block ends without an error.

    On an error (or a cancel) the temp file is removed and ``path`` is untouched.
    ``mode`` is the widest the new file may be; the umask narrows it further.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE) -> None:
    """Replace ``path`` with ``data``: the file is the old one or the new one, never a part."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)
