"""Reading a log back: the state resume needs, and the results exports need.

Replay is idempotent: a (model, id) pair may have several result records (a
failure retried later, a result re-run with an edited prompt) and the latest
one wins, for counts, for resume and for export. Money is different: every
result record's cost and tokens were spent, so totals sum over all of them.

Both readers are shaped by the million-record log (~700 MB): ``scan`` must
finish in ~3 s on two cores and neither may hold a million results. For a big
log a child process checks the checksums on the second core while this one
parses (``_verify``).

``scan`` decodes of each result only its ``head`` array, and keeps the latest
status of each pair in one of two indexes:

- by line (the default, for an input whose fingerprint still matches): per
  model, a ``bytearray`` of statuses and an ``array('I')`` of id hashes, both
  indexed by the item's line: 5 bytes per item, one store per record, latest
  wins by overwriting, counts by ``bytearray.count``. The id hash guards
  against an item that is not the one logged at its line.
- by id (for ``--force`` on a changed input, where lines moved): an IdSet of
  every key, two small IdSets of the keys whose first record failed or was
  skipped, and a dict only for keys with more than one record: ~16 bytes per
  key, and an IdSet insert in Python costs ~0.5 s more per million records.

Every value read back is bound-checked, because a record with a valid checksum
can still hold anything (a hand edit, another tool, a hostile file): a line far
beyond what the table has grown to is kept apart (``_ByLine.far``) instead of
growing the table to it, and a negative or absurd cost or token count, a
non-finite spend, an unknown state or timestamp is ``LogCorrupt`` naming the
line, never a MemoryError or an overflow later. The hot loop pays for one
chained comparison per result; the totals are checked once at the end.

``iter_results`` reads the log twice: the first pass finds the keys with more
than one record and the offset of the last one (a dict of those keys only),
the second yields each key's latest result where the key first appeared,
reading the later record back with one ``pread``.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, cast, get_args

import orjson

from engine._errors import LogCorrupt, LogError
from engine._events import FinalState
from engine._idset import IdSet
from engine._results import ItemResult, Status
from engine.log import _verify
from engine.log._format import FORMAT_VERSION, ValidLines, decode, valid_end
from engine.log._records import (
    HEAD_OFFSET,
    LIFECYCLE_KINDS,
    MAX_TIME,
    MAX_TOKENS,
    MAX_USD,
    RESULT_START,
    BatchRecord,
    LifecycleKind,
    batch_from_record,
    is_bounded,
    result_from_record,
)

IndexBy = Literal["line", "id"]

LogRunState = Literal["new", "interrupted", "paused"] | FinalState
"""How a run stands by its log: ``new`` (never executed), ``interrupted`` (the log
ends while it was running: killed, or still running now), ``paused`` (killed while
paused), or how its last execution ended."""

_CODES: dict[str, int] = {"ok": 1, "failed": 2, "skipped": 3, "truncated": 4}
"""A status as one byte; ``truncated`` came with format 2, so a newer code is added last and
an old log's bytes mean what they meant."""
_FINAL_STATES: tuple[str, ...] = get_args(FinalState)
_FAR_SLACK = 1 << 20
"""A line more than twice the records seen plus this beyond the table is kept apart."""
_STATUS_OF: tuple[Status | None, ...] = (None, "ok", "failed", "skipped", "truncated")
_ID_MASK = 0xFFFFFFFF

Head = tuple[str, str, int, Status, float, int, int, int]
"""A result's head: model, id, line, status, cost_usd, input, output and cached tokens."""


def _head(line: bytes) -> Head:
    """The head of a result line (``scan`` inlines the fast path)."""
    try:
        model, id, item_line, status, cost, i, o, c = orjson.loads(
            line[HEAD_OFFSET : line.index(b"]", HEAD_OFFSET) + 1]
        )
        if status in _CODES:
            return model, id, item_line, status, cost, i, o, c
    except (orjson.JSONDecodeError, ValueError, TypeError):
        pass
    return _full_head(line)


def _full_head(line: bytes) -> Head:
    """The head of a result line the fast path could not cut (a ``]`` inside the id)."""
    try:
        model, id, item_line, status, cost, i, o, c = decode(line)["head"]
    except (KeyError, TypeError, ValueError):
        raise LogCorrupt("a result record without a valid head") from None
    if (
        type(model) is not str
        or type(id) is not str
        or type(item_line) is not int
        or status not in _CODES
    ):
        raise LogCorrupt("a result record without a valid head")
    return model, id, item_line, status, cost, i, o, c


@dataclass(frozen=True, slots=True)
class ModelCounts:
    """Pairs of one model by the status of their latest result record."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    truncated: int = 0

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.skipped + self.truncated


class _ByLine:
    """Latest status per (model, line): a status byte and an id hash per line.

    The table grows to the highest line seen, so a line far beyond it (more
    than twice the records seen, plus ``_FAR_SLACK``) goes to ``far``, a dict,
    until the table has grown to reach it: a hostile line 2**40 costs one entry,
    not a terabyte.
    """

    __slots__ = ("far", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, tuple[bytearray, array[int]]] = {}
        self.far: dict[str, dict[int, tuple[int, int]]] = {}

    def store(self, model: str, line: int, code: int, id_hash: int, records: int) -> None:
        """The scan's store for a line beyond ``model``'s table, ``records`` results in."""
        if type(line) is not int or line < 0:
            raise LogCorrupt(f"a result record with line {line!r:.40}")
        statuses, ids = self.tables.setdefault(model, (bytearray(), array("I")))
        if line >= 2 * records + _FAR_SLACK:
            self.far.setdefault(model, {})[line] = (code, id_hash)
            return
        size = max(2 * len(statuses), line + 1, 1024)
        statuses.extend(bytes(size - len(statuses)))
        ids.frombytes(bytes(ids.itemsize * (size - len(ids))))
        far = self.far.get(model)
        for near in [at for at in far or () if at < size]:
            statuses[near], ids[near] = far.pop(near)  # type: ignore[union-attr]
        statuses[line] = code
        ids[line] = id_hash

    def get(self, model: str, id: str, line: int) -> Status | None:
        table = self.tables.get(model)
        if table is None:
            return None
        statuses, ids = table
        if 0 <= line < len(statuses):
            code, id_hash = statuses[line], ids[line]
        else:
            code, id_hash = self.far.get(model, {}).get(line, (0, 0))
        if id_hash != hash(id) & _ID_MASK:
            return None
        return _STATUS_OF[code]

    def counts(self) -> dict[str, ModelCounts]:
        counts = {}
        for model, (statuses, _) in self.tables.items():
            far = [code for code, _ in self.far.get(model, {}).values()]
            counts[model] = ModelCounts(
                *(statuses.count(code) + far.count(code) for code in (1, 2, 3, 4))
            )
        return counts


class _ById:
    """Latest status per (model, id) key in ~8 bytes per key (see the module docstring)."""

    __slots__ = ("first_failed", "first_skipped", "later", "seen", "tallies")

    def __init__(self) -> None:
        self.seen = IdSet()
        self.first_failed = IdSet()
        self.first_skipped = IdSet()
        self.later: dict[str, Status] = {}
        self.tallies: dict[str, list[int]] = {}

    def add(self, model: str, id: str, status: Status) -> None:
        key = f"{model}\x00{id}"
        tally = self.tallies.setdefault(model, [0, 0, 0, 0, 0])
        if self.seen.add(key):
            if status == "failed":
                self.first_failed.add(key)
            elif status == "skipped":
                self.first_skipped.add(key)
            elif status == "truncated":  # rare: kept with the keys of several records
                self.later[key] = status
        else:
            tally[_CODES[self._get(key) or "ok"]] -= 1
            self.later[key] = status
        tally[_CODES[status]] += 1

    def _get(self, key: str) -> Status | None:
        later = self.later.get(key) if self.later else None
        if later is not None:
            return later
        if key not in self.seen:
            return None
        if self.first_failed and key in self.first_failed:
            return "failed"
        if self.first_skipped and key in self.first_skipped:
            return "skipped"
        return "ok"

    def get(self, model: str, id: str, line: int) -> Status | None:
        return self._get(f"{model}\x00{id}")

    def counts(self) -> dict[str, ModelCounts]:
        return {model: ModelCounts(*tally[1:]) for model, tally in self.tallies.items()}


@dataclass(frozen=True, slots=True, eq=False)
class LogState:
    """What a log says about its run; ``status`` answers resume's question per pair."""

    header: Mapping[str, Any] | None
    """The header record, or None when the log holds no valid record at all."""
    by_model: Mapping[str, ModelCounts]
    cost_usd: float
    """Summed over every result record, retried ones included: that money is spent; or the
    spend a finish record states, when higher (paid attempts of items aborted mid-retry);
    or, when the last execution never finished (killed), the last ``hold`` bound it wrote,
    when higher: calls it had sent may have been paid for without a result."""
    unsettled_usd: float
    """The part of ``cost_usd`` that only such a ``hold`` bound accounts for: counted as
    spent, though the calls in flight at the kill may never have been billed."""
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    result_records: int
    lifecycle: LifecycleKind | None
    """Kind of the last session/pause/resume/stop/finish record."""
    final_state: FinalState | None
    """``state`` of the last lifecycle record when that is a finish record."""
    batches: Mapping[str, BatchRecord]
    """The latest record of every provider batch job, by its token, in the order of intents."""
    records: int
    valid_bytes: int
    tail_bytes: int
    """Bytes after the last valid record: a torn or garbage tail ``recover`` would move aside."""
    index: IndexBy
    _index: _ByLine | _ById = field(repr=False)
    elapsed_s: float = 0.0
    """Time the run's executions took, each from its session record to its last lifecycle
    record (its finish, or for one killed, the last pause, resume or stop it wrote)."""

    def status(self, model: str, id: str, line: int) -> Status | None:
        """Status of the latest result of the item (``id`` at ``line``) for ``model``, if any.

        Answered in this process only (the line index keeps salted id hashes).
        """
        return self._index.get(model, id, line)

    @property
    def ok(self) -> int:
        return sum(c.ok for c in self.by_model.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.by_model.values())

    @property
    def skipped(self) -> int:
        return sum(c.skipped for c in self.by_model.values())

    @property
    def truncated(self) -> int:
        return sum(c.truncated for c in self.by_model.values())

    @property
    def done(self) -> int:
        """Pairs with a terminal result, whatever its status."""
        return sum(c.total for c in self.by_model.values())

    @property
    def run_state(self) -> LogRunState:
        if self.lifecycle is None:
            return "new"
        if self.lifecycle == "finish" and self.final_state is not None:
            return self.final_state
        if self.lifecycle == "pause":
            return "paused"
        if self.lifecycle == "stop":
            return "stopped"
        return "interrupted"

    @property
    def outcome(self) -> FinalState:
        """How the run ended, for whoever shows or keeps it: a run killed, paused or never
        executed reads as ``stopped`` (its unfinished items resume)."""
        state = self.run_state
        if state == "new" or state == "interrupted" or state == "paused":
            return "stopped"
        return state


def scan(path: str | os.PathLike[str], *, index: IndexBy = "line") -> LogState:
    """Read a whole log into a LogState; LogCorrupt if a bad record has valid ones after it.

    ``index="line"`` when the input's fingerprint matches the header's, ``"id"``
    when it does not (``--force``). Read-only: a bad tail is counted in
    ``tail_bytes``, not moved (``recover`` does that). A big log's checksums are
    checked by a child process while this one parses (see ``_verify``).
    """
    path = Path(path)
    with open(path, "rb", buffering=0) as f, _valid_prefix(f, path) as lines_of:
        return _scan_lines(lines_of, path, index)


@contextmanager
def _valid_prefix(f: IO[bytes], path: Path) -> Iterator[ValidLines]:
    """The log's valid lines; a big log's checksums are checked by a child meanwhile.

    In that case the lines are those of the prefix ``valid_end`` found, unchecked
    while they are read, and LogCorrupt for a damaged one is raised on leaving
    the block, before anything read from them can be used.
    """
    size = os.fstat(f.fileno()).st_size
    if size < _verify.PARALLEL_MIN_BYTES:
        yield ValidLines(f, path)
        return
    end = valid_end(f, size)
    f.seek(0)
    with _verify.Checker(path, end) as checker:
        try:
            yield ValidLines(f, path, end=end, verify=False)
        except Exception:
            checker.raise_damage()  # damage explains a failed parse better than the parse
            raise
        checker.raise_damage()


def _scan_lines(lines_of: ValidLines, path: Path, index: IndexBy) -> LogState:
    by_line = _ByLine() if index == "line" else None
    by_id = _ById() if index == "id" else None
    tables = by_line.tables if by_line is not None else {}
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    codes, mask, start, head_at = _CODES, _ID_MASK, RESULT_START, HEAD_OFFSET
    cost, input_tokens, output_tokens, cached_tokens, results = 0.0, 0, 0, 0, 0
    header: dict[str, Any] | None = None
    lifecycle: LifecycleKind | None = None
    final: FinalState | None = None
    spent = 0.0
    held = 0.0
    batches: dict[str, BatchRecord] = {}
    elapsed = 0.0
    session_at: float | None = None  # when the execution being read began, and its last record
    last_at = 0.0
    for lines in lines_of:
        line = b""
        try:
            for line in lines:
                if line.startswith(start, 9):
                    try:  # _head, inlined: this runs a million times
                        model, id, item_line, status, c, i, o, ca = loads(
                            line[head_at : line.index(b"]", head_at) + 1]
                        )
                        code = codes[status]
                    except (JSONDecodeError, ValueError, TypeError, KeyError):
                        model, id, item_line, status, c, i, o, ca = _full_head(line)
                        code = codes[status]
                    if not (c >= 0 and i >= 0 and o >= 0 and ca >= 0):  # NaN fails too
                        raise LogCorrupt("a result record with a negative cost or token count")
                    results += 1
                    cost += c
                    input_tokens += i
                    output_tokens += o
                    cached_tokens += ca
                    if by_id is not None:
                        by_id.add(model, id, status)
                        continue
                    table = tables.get(model)
                    if table is not None and 0 <= item_line < len(table[0]):
                        table[0][item_line] = code
                        table[1][item_line] = hash(id) & mask
                    else:
                        by_line.store(model, item_line, code, hash(id) & mask, results)  # type: ignore[union-attr]
                    continue
                rec = decode(line)
                kind = rec.get("k")
                if kind == "header":
                    if header is not None or results or lifecycle or batches:
                        raise LogCorrupt("a second header record")
                    header = _checked_header(rec, path)
                elif kind in LIFECYCLE_KINDS:
                    lifecycle = kind
                    t = rec.get("t")
                    if is_bounded(t, MAX_TIME):  # elapsed is told, not checked: no time, no count
                        at = float(t)  # type: ignore[arg-type]
                        if kind == "session":
                            if session_at is not None:
                                elapsed += max(0.0, last_at - session_at)
                            session_at = at
                        last_at = at
                    final = _finish_state(rec) if kind == "finish" else None
                    if kind == "finish":
                        spent = max(spent, _amount(rec.get("spent_usd", 0.0), "spend"))
                        held = 0.0  # the finish states what was spent: earlier bounds are moot
                elif kind == "hold":
                    held = max(held, _amount(rec.get("upto_usd"), "spending bound"))
                elif kind == "batch":
                    batch = batch_from_record(rec, previous=batches.get(str(rec.get("token"))))
                    batches[batch.token] = batch
        except LogCorrupt as exc:
            raise _located(exc, path, lines_of, lines, line) from None
        except TypeError:  # a head value compared or added as what it is not
            wrong = LogCorrupt("a result record with a value of the wrong type")
            raise _located(wrong, path, lines_of, lines, line) from None
    if header is None and lines_of.records:
        raise LogCorrupt(f"checkpoint log {path} does not start with a header record")
    _check_totals(path, cost, (input_tokens, output_tokens, cached_tokens))
    if session_at is not None:
        elapsed += max(0.0, last_at - session_at)
    found = by_line if by_line is not None else by_id
    assert found is not None
    return LogState(
        header=header,
        by_model=found.counts(),
        cost_usd=max(cost, spent, held),
        unsettled_usd=max(0.0, held - max(cost, spent)),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        result_records=results,
        lifecycle=lifecycle,
        final_state=final,
        batches=batches,
        records=lines_of.records,
        valid_bytes=lines_of.valid_bytes,
        tail_bytes=lines_of.tail_bytes,
        index=index,
        _index=found,
        elapsed_s=elapsed,
    )


def _checked_header(rec: dict[str, Any], path: Path) -> dict[str, Any]:
    version = rec.get("v")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LogError(
            f"checkpoint log {path} has format version {version!r};"
            f" this batchdeck reads versions up to {FORMAT_VERSION}"
        )
    if not is_bounded(rec.get("t"), MAX_TIME) or type(rec.get("run_id")) is not str:
        raise LogCorrupt("a header record without a valid time and run id")
    return rec


def _amount(value: object, what: str) -> float:
    if not is_bounded(value, MAX_USD):
        raise LogCorrupt(f"a record with an impossible {what} of {value!r:.40}")
    return float(value)  # type: ignore[arg-type]


def _finish_state(rec: Mapping[str, Any]) -> FinalState:
    state = rec.get("state")
    if state not in _FINAL_STATES:
        raise LogCorrupt(f"a finish record with an unknown state {state!r:.40}")
    return cast(FinalState, state)


def _check_totals(path: Path, cost: float, tokens: tuple[int, int, int]) -> None:
    """What the results add up to is a real run's: finite, within bounds, whole tokens."""
    if not is_bounded(cost, MAX_USD):
        raise LogCorrupt(f"checkpoint log {path}: its results add up to an impossible cost")
    if not all(type(count) is int and count <= MAX_TOKENS for count in tokens):
        raise LogCorrupt(f"checkpoint log {path}: its results add up to an impossible token count")


def _located(
    exc: Exception, path: Path, lines_of: ValidLines, lines: list[bytes], line: bytes
) -> LogCorrupt:
    """``exc`` with the log and the line number of ``line`` in front of its message."""
    index = next((i for i, candidate in enumerate(lines) if candidate is line), 0)
    return LogCorrupt(f"checkpoint log {path}, line {lines_of.line_no + index}: {exc}")


def iter_results(path: str | os.PathLike[str]) -> Iterator[ItemResult]:
    """The latest result of every (model, id) pair, in the order pairs first appear."""
    path = Path(path)
    with open(path, "rb", buffering=0) as f:
        seen = IdSet()
        last_at: dict[str, tuple[int, int]] = {}  # only keys with several records
        pos = 0
        with _valid_prefix(f, path) as first_pass:
            for lines in first_pass:
                line = b""
                try:
                    for line in lines:
                        if line.startswith(RESULT_START, 9):
                            model, id = _head(line)[:2]
                            key = f"{model}\x00{id}"
                            if not seen.add(key):
                                last_at[key] = (pos, len(line))
                        pos += len(line) + 1
                except LogCorrupt as exc:
                    raise _located(exc, path, first_pass, lines, line) from None
        del seen
        f.seek(0)
        emitted: set[str] = set()
        second_pass = ValidLines(f, path, end=first_pass.valid_bytes, verify=False)
        for lines in second_pass:
            line = b""
            try:
                for line in lines:
                    if not line.startswith(RESULT_START, 9):
                        continue
                    record = line
                    if last_at:
                        model, id = _head(line)[:2]
                        key = f"{model}\x00{id}"
                        at = last_at.get(key)
                        if at is not None:
                            if key in emitted:
                                continue
                            emitted.add(key)
                            record = os.pread(f.fileno(), at[1], at[0])
                    result = result_from_record(decode(record))
                    yield result
            except LogCorrupt as exc:
                raise _located(exc, path, second_pass, lines, line) from None


T = TypeVar("T")

_PAID_START = b'{"k":"paid",'
_SESSION_START = b'{"k":"session",'


def item_spend(
    path: str | os.PathLike[str], keep: Callable[[str, int], bool] = lambda id, line: True
) -> dict[str, float]:
    """Per item id (those ``keep(id, line)``), all it has cost: every result record of its
    pairs (a retried one's too: that money was spent), and its paid attempts no result
    accounts for (a kill between a paid attempt and the result, which sums the attempts of
    its own session only: those a later session or the log's end cut off count apart)."""
    spent: dict[str, float] = {}
    pending: dict[tuple[str, str], float] = {}
    orphaned: dict[str, bool] = {}  # ids a cut-off paid attempt was added for: kept?

    def add(id: str, cost: float) -> None:
        if cost:
            spent[id] = spent.get(id, 0.0) + cost

    def cut_off() -> None:
        for (_, id), cost in pending.items():
            add(id, cost)
            orphaned.setdefault(id, True)
        pending.clear()

    def visit(line: bytes) -> None:
        if line.startswith(RESULT_START, 9):
            model, id, item_line, _, cost = _head(line)[:5]
            pending.pop((model, id), None)
            if keep(id, item_line):
                add(id, cost)
            elif id in orphaned:
                orphaned[id] = False
        elif line.startswith(_PAID_START, 9):
            model, id, _, cost = decode(line)["head"][:4]
            pending[model, id] = pending.get((model, id), 0.0) + _amount(cost, "paid")
        elif line.startswith(_SESSION_START, 9):
            cut_off()

    for _ in _each_line(path, visit):
        pass
    cut_off()
    return {id: cost for id, cost in spent.items() if orphaned.get(id, True)}


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every valid record in file order (a bad tail is left out), for tools and tests."""
    return _each_line(path, decode)


def _each_line(path: str | os.PathLike[str], use: Callable[[bytes], T | None]) -> Iterator[T]:
    """What ``use`` makes of each valid line, in file order, where it makes something; a
    corrupt record (its check, or what ``use`` reads of it) says where it is."""
    path = Path(path)
    with open(path, "rb", buffering=0) as f:
        lines_of = ValidLines(f, path)
        for lines in lines_of:
            line = b""
            try:
                for line in lines:
                    made = use(line)
                    if made is not None:
                        yield made
            except LogCorrupt as exc:
                raise _located(exc, path, lines_of, lines, line) from None
