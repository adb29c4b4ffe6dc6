"""The response cache: a request answered once is answered again at no cost, in any run.

Key. The blake2b-128 digest of what a request sends (``Identifies.request_identity``:
the provider, the URL without credentials, the JSON body with its keys sorted:
messages, system, schema, every parameter). Headers are not in it, so neither is
an API key, and only the digest is stored, never the prompt. ``simulate`` has no
identity: its answers cost nothing and are drawn afresh, which is its purpose.

Store. One SQLite file (``<cache dir>/responses.sqlite3``), in WAL mode, rather
than a file per answer or a key-value library: it is in the standard library, a
committed transaction survives SIGKILL whole (the WAL is replayed or ignored
on open, never half applied), several processes read it while one writes
(two runs sharing the cache), and an index on the last use gives least recently
used eviction without listing a directory of a million files. Each row also
holds a CRC32 of its key and answer, checked on every read: a row that does not
match (a disk fault, another tool's edit) is a miss, never a wrong answer.

Bounded: once the rows pass ``max_bytes`` the least recently used go, and
incremental vacuum gives their pages back to the file system. A read marks a
row used when its mark is more than ``TOUCH_EVERY_S`` old, so a fully cached
run does not turn every read into a write.

Never in the way. Reads are one indexed lookup on the event loop (a few
microseconds: cheaper than a hop to a thread). Writes go to one thread through a
bounded queue, a transaction per batch, so the loop never waits on the disk or
on another process's write lock; an answer the queue has no room for is simply
not stored. Any SQLite error (a corrupt or unreadable file, a full disk) turns
the cache off for the rest of the execution and is reported once as a
``problem``: the run goes on without it, never fails because of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson

from engine._paths import cache_dir
from engine._results import Usage
from engine.providers._base import CallRequest

CACHE_FILE = "responses.sqlite3"
SCHEMA_VERSION = 1
TOUCH_EVERY_S = 3600
"""A read refreshes a row's last use only when it is older than this."""
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write to end."""
QUEUE_ROWS = 50_000
"""Writes waiting for the writer thread; more are dropped (a later miss, not an error)."""
BATCH_ROWS = 1000
EVICT_TO = 0.9
"""Eviction goes down to this share of the limit, so it does not run on every write."""
WAL_LIMIT = 64 << 20
"""The write-ahead log is cut back to this size after a checkpoint."""
_GB = 1 << 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key BLOB PRIMARY KEY,
    answer BLOB NOT NULL,
    crc INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_use ON answers (used);
"""
_GET = "SELECT answer, crc, used FROM answers WHERE key = ?"
_PUT = (
    "INSERT INTO answers (key, answer, crc, stored, used) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, crc = excluded.crc, "
    "stored = excluded.stored, used = excluded.used"
)
_TOUCH = "UPDATE answers SET used = ? WHERE key = ?"


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def request_key(identity: bytes) -> bytes:
    return hashlib.blake2b(identity, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Answer:
    """What is kept of a successful call: enough to give the same result again."""

    text: str
    parsed: Any
    finish_reason: str | None
    usage: Usage

    def encode(self) -> bytes:
        usage = self.usage
        counts = [usage.input_tokens, usage.output_tokens, usage.cached_tokens]
        value = {"t": self.text, "p": self.parsed, "f": self.finish_reason, "u": counts}
        return orjson.dumps(value)

    @classmethod
    def decode(cls, data: bytes) -> Answer | None:
        """The answer ``data`` holds, or None if it is not one this version wrote."""
        try:
            value = orjson.loads(data)
            text, finish, (input_tokens, output_tokens, cached) = value["t"], value["f"], value["u"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        counts = (input_tokens, output_tokens, cached)
        if type(text) is not str or not all(type(n) is int and n >= 0 for n in counts):
            return None
        if finish is not None and type(finish) is not str:
            return None
        return cls(text, value.get("p"), finish, Usage(input_tokens, output_tokens, cached))


def _check(key: bytes, answer: bytes) -> int:
    return zlib.crc32(answer, zlib.crc32(key))


def _connection(path: Path) -> sqlite3.Connection:
    """A connection to an existing cache file (``_connect`` makes it)."""
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: a power loss may drop the last writes
        db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    except BaseException:
        db.close()
        raise
    return db


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to the cache file, made and migrated if new; sqlite3.Error if unusable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = _connection(path)
    try:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes on a new, empty file
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("the file cannot be put in WAL mode")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"written by another version (schema {version})")
        if version == 0:
            db.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        path.chmod(0o600)
    except BaseException:
        db.close()
        raise
    return db


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ResponseCache:
    """One process's handle on the cache file: reads on the caller's thread, writes on its own.

    ``problem`` is set (once) when the cache stopped working; from then on it
    answers nothing and stores nothing.
    """

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection | None,
        writer_db: sqlite3.Connection | None,
        max_bytes: int,
    ) -> None:
        self.path = path
        self._db = db
        self._writer_db = writer_db
        """The writer thread's own connection, opened with the cache, not mid-run."""
        self._max_bytes = max_bytes
        self.problem: str | None = None
        self._queue: queue.Queue[tuple[bytes, bytes | None, int] | None] = queue.Queue(QUEUE_ROWS)
        self._writer: threading.Thread | None = None

    @classmethod
    def open(cls, max_gb: float, path: Path | None = None) -> ResponseCache:
        """The cache at ``path`` (default: the user's); check ``problem`` if it could not open."""
        path = path or cache_path()
        try:
            db = _connect(path)
        except (sqlite3.Error, OSError) as exc:
            cache = cls(path, None, None, 0)
            cache._fail(exc)
            return cache
        try:
            writer_db = _connection(path)
        except sqlite3.Error as exc:
            db.close()
            cache = cls(path, None, None, 0)
            cache._fail(exc)
            return cache
        return cls(path, db, writer_db, int(max_gb * _GB))

    @property
    def working(self) -> bool:
        return self.problem is None

    def _fail(self, exc: BaseException) -> None:
        if self.problem is None:
            self.problem = (
                f"the response cache {self.path} cannot be used ({_why(exc)}): running "
                "without it (batchdeck cache clear starts it afresh)"
            )

    def get(self, key: bytes) -> Answer | None:
        """The answer stored under ``key``, if there is one and it is whole."""
        db = self._db
        if db is None or self.problem is not None:
            return None
        try:
            row = db.execute(_GET, (key,)).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
            return None
        if row is None:
            return None
        data, crc, used = row
        if type(data) is not bytes or crc != _check(key, data):
            return None  # torn or altered: a miss; the next answer for this key replaces it
        answer = Answer.decode(data)
        now = int(time.time())
        if answer is not None and type(used) is int and now - used > TOUCH_EVERY_S:
            self._enqueue((key, None, now))
        return answer

    def put(self, key: bytes, answer: Answer) -> None:
        """Store ``answer`` under ``key``, in the writer thread (replacing what was there)."""
        if self._db is None or self.problem is not None:
            return
        self._enqueue((key, answer.encode(), int(time.time())))

    def _enqueue(self, row: tuple[bytes, bytes | None, int]) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_all, name="batchdeck-cache")
            self._writer.daemon = True
            self._writer.start()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(row)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (waiting at most ``timeout_s``) and close. Blocking."""
        writer = self._writer
        if writer is not None:
            while True:  # a full queue: make room for the end mark by dropping the oldest write
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
            writer.join(timeout_s)
        elif self._writer_db is not None:
            self._writer_db.close()
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- the writer thread ----

    def _write_all(self) -> None:
        db = self._writer_db
        assert db is not None
        try:
            done = False
            while not done:
                rows = [self._queue.get()]
                while len(rows) < BATCH_ROWS:
                    try:
                        rows.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                done = None in rows
                batch = [row for row in rows if row is not None]
                if batch and self.problem is None:
                    try:
                        self._write(db, batch)
                    except sqlite3.Error as exc:
                        self._fail(exc)
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, rows: list[tuple[bytes, bytes | None, int]]) -> None:
        puts = [(key, data, _check(key, data), now, now) for key, data, now in rows if data]
        touches = [(now, key) for key, data, now in rows if data is None]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_PUT, puts)
            db.executemany(_TOUCH, touches)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        evict(db, self._max_bytes)


def evict(db: sqlite3.Connection, max_bytes: int) -> int:
    """Drop the least recently used answers until the file's live pages fit ``max_bytes``
    (down to ``EVICT_TO`` of it); returns how many went."""
    if live_bytes(db) <= max_bytes:
        return 0
    dropped = 0
    page = db.execute("PRAGMA page_size").fetchone()[0]
    while live_bytes(db) > max_bytes * EVICT_TO:
        over = live_bytes(db) - int(max_bytes * EVICT_TO)
        rows = max(1, min(10_000, over // page))
        gone = db.execute(
            "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY used LIMIT ?)",
            (rows,),
        ).rowcount
        if not gone:
            break
        dropped += gone
    db.executescript("PRAGMA incremental_vacuum;")  # run whole (execute frees one page)
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the file shrinks once the WAL is copied back
    return dropped


def live_bytes(db: sqlite3.Connection) -> int:
    """The bytes of the file's pages in use (freed pages are reused, or vacuumed away)."""
    pages: int = db.execute("PRAGMA page_count").fetchone()[0]
    free: int = db.execute("PRAGMA freelist_count").fetchone()[0]
    size: int = db.execute("PRAGMA page_size").fetchone()[0]
    return (pages - free) * size


class RunCache:
    """The response cache as one execution uses it: keys per model, and whether it may read.

    ``read`` is False under ``--no-cache`` (answers are still stored); ``only`` is
    ``--cache-only`` (nothing the cache cannot answer is sent).
    """

    def __init__(
        self,
        store: ResponseCache,
        identities: Mapping[str, Callable[[CallRequest], bytes]],
        *,
        read: bool,
        only: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.store = store
        self._identities = identities
        self.read = read
        self.only = only
        self._warn = warn
        self._warned = False
        self.check()

    def key(self, model: str, request: CallRequest) -> bytes | None:
        """The key of ``request`` to ``model``; None when its answers are not cached."""
        identity = self._identities.get(model)
        return None if identity is None else request_key(identity(request))

    def lookup(self, key: bytes | None) -> Answer | None:
        if key is None or not self.read:
            return None
        answer = self.store.get(key)
        if self.store.problem is not None and not self._warned:
            self.check()
        return answer

    def keep(self, key: bytes | None, answer: Answer) -> None:
        if key is not None:
            self.store.put(key, answer)

    def check(self) -> None:
        """Report the store's problem, once, if it has one (its writer thread's included)."""
        if self.store.problem is not None and not self._warned:
            self._warned = True
            self._warn(self.store.problem)

    async def close(self) -> None:
        """Write what is queued (in a thread: it may wait on another run's write) and close."""
        await anyio.to_thread.run_sync(self.store.close)
        self.check()


@dataclass(frozen=True, slots=True)
class CacheStats:
    path: Path
    answers: int
    file_bytes: int
    """The file and its WAL on disk."""
    oldest: float | None
    newest: float | None
    """When the oldest and newest answers were stored (Unix seconds)."""


def cache_stats(path: Path | None = None) -> CacheStats:
    """What the cache holds; sqlite3.Error or OSError if it cannot be read."""
    path = path or cache_path()
    if not path.exists():
        return CacheStats(path, 0, 0, None, None)
    db = _connect(path)
    try:
        answers, oldest, newest = db.execute(
            "SELECT count(*), min(stored), max(stored) FROM answers"
        ).fetchone()
    finally:
        db.close()
    return CacheStats(path, answers, _file_bytes(path), oldest, newest)


def _file_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total


def clear_cache(older_than_s: float | None = None, path: Path | None = None) -> int:
    """Drop every answer (or those stored more than ``older_than_s`` ago); returns how many.

    A file that cannot be read as a cache is removed whole (with its WAL): clearing is
    how a user gets past a damaged one."""
    path = path or cache_path()
    if not path.exists():
        return 0
    try:
        db = _connect(path)
    except sqlite3.DatabaseError:
        if older_than_s is not None:
            raise
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return 0
    try:
        if older_than_s is None:
            gone = db.execute("DELETE FROM answers").rowcount
        else:
            since = int(time.time() - older_than_s)
            gone = db.execute("DELETE FROM answers WHERE stored < ?", (since,)).rowcount
        db.executescript("PRAGMA incremental_vacuum;")  # run whole (execute frees one page)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return int(gone)
