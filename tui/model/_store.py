"""The item rows a run has produced, shaped for a table that shows a million of them.

Rows are stored by column in the order the run first mentioned them, and a
dict per model maps an id to a row's position, so an engine event updates its
row in place in O(1). Columns rather than one object per row, because a
million small objects cost ~150 bytes each and every full garbage collection
walks all of them, a pause the run screen would show. Nothing per row is
walked by the collector: numbers, status and model codes live in ``array``s,
ids and previews in ``StrColumn``s (tuples of strings, which CPython stops
tracking), and dicts holding only strings and numbers are never tracked.
``store[position]`` builds a ``Row`` snapshot for the few rows on screen. Every
change stamps the row's ``version`` from a store-wide counter, so a table can
tell whether what it drew for a row is still current by comparing one integer.

A pipeline's rows are its lanes (a model of a step), and every row also shows its
item's step progress (``2/3 classify``, ``1/3 classify: timeout``): it is read from
the statuses of the item's lanes when a row is drawn (one lookup per lane), never
stored, and a change to any lane of an item stamps a new version on all of them
(``lanes``, from ``set_lanes``), so their progress repaints. A run with one step has
no progress to show (``steps`` is empty).

Filtered views (only failed rows, only rows in flight, only rows of one error
kind) must not be rebuilt from a million rows on every repaint. Each *bucket*
is an append-only list of ``(row position, generation)`` entries: a row joining
a bucket appends once; a row leaving one only bumps its own generation, which
turns every entry that carries the old generation stale. Stale entries are
counted and dropped by compaction, either when a view is read or, so that an
unread bucket (the in-flight one churns with every item) stays small, when
they outnumber the live ones. Both are amortised O(1) per change, and reading
a view is O(1) per row drawn.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from engine import ErrorInfo, ItemResult, split_lane
from tui.model._column import StrColumn

RowStatus = Literal[
    "running", "retrying", "submitted", "pending", "ok", "failed", "skipped", "truncated"
]
"""``submitted``: in a provider batch job, until its result arrives; ``pending``: its job
ended without a result for it (expired, cancelled), so a resume sends it again."""
StatusFilter = Literal["all", "active", "ok", "failed", "skipped", "truncated"]
"""What the item table can be filtered to: ``active`` is running, retrying or submitted."""

STATUS_FILTERS: Final[tuple[StatusFilter, ...]] = (
    "all",
    "active",
    "ok",
    "failed",
    "skipped",
    "truncated",
)
FINISHED: Final[frozenset[RowStatus]] = frozenset(("ok", "truncated", "failed", "skipped"))
"""Row statuses of a result (the others are of a call in flight)."""
SortKey = Literal["cost", "latency", "steps"]
"""What the item table can be sorted by: the highest cost or latency first, the items with
the fewest steps done first (those stopped at a step before those still going)."""

PREVIEW_CHARS: Final = 512
"""How much of an output or error message a row keeps: more than any terminal is wide."""

_COMPACT_MIN_STALE: Final = 1024
_GROW_ROWS: Final = 4096
"""Numeric columns grow by this many zeroed rows at a time, not one append per field."""

_STATUS_BUCKET: Final[dict[RowStatus, str]] = {
    "running": "active",
    "retrying": "active",
    "submitted": "active",
    "pending": "pending",
    "ok": "ok",
    "failed": "failed",
    "skipped": "skipped",
    "truncated": "truncated",
}
_KIND_PREFIX: Final = "kind:"
_STATUSES: Final[tuple[RowStatus, ...]] = get_args(RowStatus)
_STATUS_CODE: Final[dict[RowStatus, int]] = {status: code for code, status in enumerate(_STATUSES)}


@dataclass(frozen=True, slots=True)
class Row:
    """One (item, model) pair as the table shows it, as of ``version``."""

    position: int
    id: str
    model: str
    status: RowStatus
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    preview: str
    """The start of the output (ok) or of the error message (failed, retrying); for a pair
    in a batch job, which job."""
    error_kind: str | None
    """The error's kind for failed, skipped and retrying rows (the status if it had none)."""
    delay_s: float
    """For a retrying row: how long the engine waits before the next attempt."""
    version: int
    cached: bool = False
    """Answered from the response cache: no call, no cost."""
    progress: StepProgress | None = None
    """For a pipeline: the item's step progress as of ``version``."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.id)


@dataclass(frozen=True, slots=True)
class StepProgress:
    """Where one item of a pipeline stands: its steps done, and the step it is at (the
    first not done) or stopped at, with the error that stopped it."""

    done: int
    steps: int
    step: str | None
    """None once every step is done."""
    error: str | None = None
    """The error kind of the lane that stopped the item at ``step``."""

    def __str__(self) -> str:
        text = f"{self.done}/{self.steps}"
        if self.step is not None:
            text += f" {self.step}"
        return text if self.error is None else f"{text}: {self.error}"

    @property
    def order(self) -> tuple[int, bool]:
        """Fewest steps done first; of those, the stopped ones first."""
        return (self.done, self.error is None)


_STOPPED_BY_UPSTREAM: Final = "upstream"
"""The error kind of a lane skipped because an earlier one of its item stopped."""


class _Bucket:
    __slots__ = ("gens", "positions", "stale")

    def __init__(self) -> None:
        self.positions = array("q")
        self.gens = array("q")
        self.stale = 0

    def __len__(self) -> int:
        return len(self.positions) - self.stale


class ItemStore:
    """Rows keyed by ``(model, id)``, with O(1) updates and O(1)-per-row filtered views."""

    def __init__(self) -> None:
        self._index: dict[str, dict[str, int]] = {}
        """Model -> id -> position."""
        self._size = 0
        self._ids = StrColumn()
        self._previews = StrColumn()
        self._model_names: list[str] = []
        self._model_codes: dict[str, int] = {}
        self._models = array("H")
        """Model code per row: an index into ``_model_names``."""
        self._status = array("B")
        """Status code per row: an index into ``_STATUSES``."""
        self._attempts = array("l")
        self._input_tokens = array("q")
        self._output_tokens = array("q")
        self._cost = array("d")
        self._latency = array("d")
        self._cached = array("B")
        """1 for a row the response cache answered."""
        self._versions = array("q")
        self._gens = array("q")
        """Bucket generation per row (see the module docstring)."""
        self._member = array("H")
        """Per row: which set of buckets it is in, an index into ``_member_sets``."""
        self._numeric = (
            self._member,
            self._models,
            self._status,
            self._attempts,
            self._input_tokens,
            self._output_tokens,
            self._cost,
            self._latency,
            self._cached,
            self._versions,
            self._gens,
        )
        """Columns kept in arrays, preallocated ahead of ``len(self)`` (see ``_grow``)."""
        self._kinds: dict[int, str] = {}
        """Error kind by position, for rows that have one (failed, skipped, retrying)."""
        self._delays: dict[int, float] = {}
        """Back-off by position, for retrying rows only."""
        self._earlier_attempts: dict[int, int] = {}
        """By position, for rows run again after a terminal record: the attempts the earlier
        records made, which the row's ``attempts`` counts on from (the try column counts
        every attempt of the pair, not only the last execution's)."""
        self._buckets: dict[str, _Bucket] = {name: _Bucket() for name in STATUS_FILTERS[1:]}
        self._member_sets: list[tuple[_Bucket, ...]] = []
        self._member_codes: dict[tuple[str, ...], int] = {}
        self._memberships: dict[tuple[RowStatus, str | None], int] = {}
        self.version = 0
        """Bumped on every change to any row."""
        self.widest_id = 0
        self.widest_model = 0
        self.steps: tuple[tuple[str, tuple[str, ...]], ...] = ()
        """A pipeline's steps in order, each with its lanes; empty for a run of one step."""
        self.widest_progress = 0
        """The longest step progress text the rows can show (its error kind aside)."""
        self._lanes: tuple[str, ...] = ()
        """Every lane of a pipeline: the rows of an item that a change to one repaints."""

    def set_lanes(self, lanes: Sequence[str]) -> None:
        """The run's lanes in the pipeline's order (``RunStarted.models``): when they make
        more than one step, rows show their item's step progress."""
        steps: dict[str, list[str]] = {}
        for lane in lanes:
            steps.setdefault(split_lane(lane)[0], []).append(lane)
        if len(steps) < 2:
            self.steps, self._lanes, self.widest_progress = (), (), 0
            return
        self.steps = tuple((step, tuple(keys)) for step, keys in steps.items())
        self._lanes = tuple(lanes)
        count = len(self.steps)
        self.widest_progress = len(f"{count}/{count} ") + max(len(step) for step in steps)
        for lane in lanes:
            self._ids_of(lane)

    # -- reading -----------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, position: int) -> Row:
        if not 0 <= position < self._size:
            raise IndexError(position)
        return Row(
            position,
            self._ids[position],
            self._model_names[self._models[position]],
            _STATUSES[self._status[position]],
            self._attempts[position],
            self._input_tokens[position],
            self._output_tokens[position],
            self._cost[position],
            self._latency[position],
            self._previews[position],
            self._kinds.get(position),
            self._delays.get(position, 0.0),
            self._versions[position],
            bool(self._cached[position]),
            self.progress(self._ids[position]),
        )

    def version_of(self, position: int) -> int:
        """The row's version, without building a ``Row``: what a cache checks per line."""
        return self._versions[position]

    def status_of(self, position: int) -> RowStatus:
        """The row's status, without building a ``Row``."""
        return _STATUSES[self._status[position]]

    def position(self, model: str, id: str) -> int | None:
        ids = self._index.get(model)
        return None if ids is None else ids.get(id)

    def get(self, model: str, id: str) -> Row | None:
        position = self.position(model, id)
        return None if position is None else self[position]

    def view(self, status: StatusFilter = "all") -> Sequence[int]:
        """Row positions that pass ``status``, in the order they joined it.

        Index it and let it go: the next change may replace the list.
        """
        if status == "all":
            return range(self._size)
        return self._live(self._buckets[status])

    def kind_view(self, kind: str) -> Sequence[int]:
        """Failed and skipped rows whose error is ``kind``."""
        bucket = self._buckets.get(_KIND_PREFIX + kind)
        return () if bucket is None else self._live(bucket)

    def sorted_view(
        self, status: StatusFilter, by: SortKey | None, step: str | None = None
    ) -> list[int]:
        """The positions of ``view(status)`` (of those whose item is at ``step``, or stopped
        there; ``""``: done with every step), the dearest or slowest first (a row with no
        known cost last), or the items with the fewest steps done first, or in their order
        (``by`` None). A snapshot: O(n log n), for a table to take now and then."""
        positions: Sequence[int] = self.view(status)
        if step is not None:
            ids, progress = self._ids, self.progress
            wanted = step or None
            positions = [
                p for p in positions if (at := progress(ids[p])) is not None and at.step == wanted
            ]
        if by is None:
            return list(positions)
        if by == "steps":
            return sorted(positions, key=self._progress_order)
        column = self._cost if by == "cost" else self._latency
        return sorted(
            positions,
            key=lambda position: -math.inf if math.isnan(v := column[position]) else v,
            reverse=True,
        )

    def progress(self, id: str) -> StepProgress | None:
        """The item's step progress; None for a run of one step. O(lanes)."""
        if not self.steps:
            return None
        index, status, kinds = self._index, self._status, self._kinds
        done = 0
        for step, lanes in self.steps:
            ok = 0
            for lane in lanes:
                position = index[lane].get(id)
                if position is None:
                    continue
                code = _STATUSES[status[position]]
                if code == "ok":
                    ok += 1
                elif code in FINISHED and kinds.get(position) != _STOPPED_BY_UPSTREAM:
                    return StepProgress(done, len(self.steps), step, kinds.get(position, code))
            if ok < len(lanes):
                return StepProgress(done, len(self.steps), step)
            done += 1
        return StepProgress(done, len(self.steps), None)

    def find_id(self, text: str, after: int = -1) -> int | None:
        """The position of the row whose id is ``text``, else of the first row after
        ``after`` (wrapping round) whose id contains it; None when no id does."""
        for ids in self._index.values():
            if text in ids:
                return ids[text]
        found = self._ids.find(text, after + 1)
        return found if found is not None or after < 0 else self._ids.find(text)

    def count(self, status: StatusFilter = "all") -> int:
        return self._size if status == "all" else len(self._buckets[status])

    def kind_counts(self) -> dict[str, int]:
        """Failed and skipped rows per error kind, largest group first."""
        counts = {
            name.removeprefix(_KIND_PREFIX): len(bucket)
            for name, bucket in self._buckets.items()
            if name.startswith(_KIND_PREFIX) and len(bucket)
        }
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    # -- writing -----------------------------------------------------------------

    def start(self, id: str, model: str, attempt: int) -> RowStatus | None:
        """An attempt began; returns the row's status before (None for a new row)."""
        position = (self._index.get(model) or self._ids_of(model)).get(id)
        if position is None:
            position = self._create(id, model, "running", None)
            old = None
        else:
            old = _STATUSES[self._status[position]]
            if old in FINISHED:
                self._earlier_attempts[position] = self._attempts[position]
            self._set_status(position, "running", None)
            self._previews[position] = ""
            self._delays.pop(position, None)
        self._attempts[position] = self._earlier_attempts.get(position, 0) + attempt
        self._stamp(position, id)
        return old

    def retrying(
        self, id: str, model: str, attempt: int, error: ErrorInfo, delay_s: float
    ) -> RowStatus | None:
        """An attempt failed and another follows after ``delay_s``."""
        position = (self._index.get(model) or self._ids_of(model)).get(id)
        if position is None:
            position = self._create(id, model, "retrying", error.kind)
            old = None
        else:
            old = _STATUSES[self._status[position]]
            if old in FINISHED:
                self._earlier_attempts[position] = self._attempts[position]
            self._set_status(position, "retrying", error.kind)
        self._attempts[position] = self._earlier_attempts.get(position, 0) + attempt
        self._previews[position] = error.message[:PREVIEW_CHARS]
        self._delays[position] = delay_s
        self._stamp(position, id)
        return old

    def submit(self, ids: Sequence[str], model: str, note: str) -> list[RowStatus | None]:
        """A provider batch job took these pairs: ``submitted`` until their results arrive.
        Each row's status before (None for a new row)."""
        index = self._index.get(model) or self._ids_of(model)
        before: list[RowStatus | None] = []
        for id in ids:
            position = index.get(id)
            if position is None:
                position = self._create(id, model, "submitted", None)
                before.append(None)
            else:
                old = _STATUSES[self._status[position]]
                if old in FINISHED:  # sent again: its attempts count on from the earlier ones
                    self._earlier_attempts[position] = self._attempts[position]
                self._set_status(position, "submitted", None)
                self._delays.pop(position, None)
                before.append(old)
            self._noted(position, note)
        return before

    def unsubmit(self, ids: Sequence[str], model: str, note: str) -> int:
        """A batch job ended without these pairs' results: those still ``submitted`` are
        ``pending`` again. How many were."""
        index = self._index.get(model) or self._ids_of(model)
        moved = 0
        for id in ids:
            position = index.get(id)
            if position is not None and _STATUSES[self._status[position]] == "submitted":
                self._set_status(position, "pending", None)
                self._noted(position, note)
                moved += 1
        return moved

    def _noted(self, position: int, note: str) -> None:
        self._previews[position] = note
        self._stamp(position, self._ids[position])

    def finish(self, result: ItemResult) -> RowStatus | None:
        """The pair's terminal record; returns the row's status before."""
        error = result.error
        status = result.status
        if error is not None:
            kind: str | None = error.kind
            preview = error.message
        else:
            kind = None if status == "ok" else status
            preview = result.output or ""
        position = (self._index.get(result.model) or self._ids_of(result.model)).get(result.id)
        if position is None:
            position = self._create(result.id, result.model, status, kind)
            old = None
        else:
            old = _STATUSES[self._status[position]]
            if old in FINISHED:  # a later record read back, with no start before it
                self._earlier_attempts[position] = self._attempts[position]
            self._set_status(position, status, kind)
            self._delays.pop(position, None)
        usage = result.usage
        self._attempts[position] = self._earlier_attempts.get(position, 0) + result.attempts
        self._input_tokens[position] = usage.input_tokens
        self._output_tokens[position] = usage.output_tokens
        self._cost[position] = math.nan if result.unpriced else result.cost_usd
        self._latency[position] = result.latency_ms
        self._cached[position] = result.cached
        self._previews[position] = preview[:PREVIEW_CHARS]
        self._stamp(position, result.id)
        return old

    # -- internals ---------------------------------------------------------------

    def _progress_order(self, position: int) -> tuple[int, bool]:
        progress = self.progress(self._ids[position])
        return (0, True) if progress is None else progress.order

    def _stamp(self, position: int, id: str) -> None:
        """A new version on the row that changed, and on the item's other lanes' rows,
        whose step progress moved with it."""
        self.version += 1
        version = self.version
        self._versions[position] = version
        for lane in self._lanes:
            other = self._index[lane].get(id)
            if other is not None:
                self._versions[other] = version

    def _ids_of(self, model: str) -> dict[str, int]:
        ids = self._index.get(model)
        if ids is None:
            ids = self._index[model] = {}
            self._model_codes[model] = len(self._model_names)
            self._model_names.append(model)
        return ids

    def _create(self, id: str, model: str, status: RowStatus, kind: str | None) -> int:
        position = self._size
        self._size += 1
        self._index[model][id] = position
        self._ids.append(id)
        self._previews.append("")
        if position == len(self._versions):
            self._grow()
        self._models[position] = self._model_codes[model]
        self._status[position] = _STATUS_CODE[status]
        if kind is not None:
            self._kinds[position] = kind
        if len(id) > self.widest_id:
            self.widest_id = len(id)
        if len(model) > self.widest_model:
            self.widest_model = len(model)
        member = self._membership(status, kind)
        self._member[position] = member
        for bucket in self._member_sets[member]:
            bucket.positions.append(position)
            bucket.gens.append(0)
        return position

    def _grow(self) -> None:
        for column in self._numeric:
            column.extend(array(column.typecode, bytes(column.itemsize * _GROW_ROWS)))

    def _membership(self, status: RowStatus, kind: str | None) -> int:
        """The code of the set of buckets a row with this status and kind is in."""
        code = self._memberships.get((status, kind))
        if code is not None:
            return code
        names: tuple[str, ...] = (_STATUS_BUCKET[status],)
        if kind is not None and names[0] in ("failed", "skipped", "truncated"):
            names = (*names, _KIND_PREFIX + kind)
        code = self._member_codes.get(names)
        if code is None:
            code = self._member_codes[names] = len(self._member_sets)
            self._member_sets.append(
                tuple(self._buckets.setdefault(name, _Bucket()) for name in names)
            )
        self._memberships[(status, kind)] = code
        return code

    def _set_status(self, position: int, status: RowStatus, kind: str | None) -> None:
        self._status[position] = _STATUS_CODE[status]
        if kind is None:
            self._kinds.pop(position, None)
        else:
            self._kinds[position] = kind
        before = self._member[position]
        after = self._membership(status, kind)
        if before == after:
            return
        self._member[position] = after
        gen = self._gens[position] + 1
        self._gens[position] = gen
        for bucket in self._member_sets[before]:
            bucket.stale += 1
            if bucket.stale > _COMPACT_MIN_STALE and bucket.stale > len(bucket):
                self._compact(bucket)
        for bucket in self._member_sets[after]:
            bucket.positions.append(position)
            bucket.gens.append(gen)

    def _live(self, bucket: _Bucket) -> Sequence[int]:
        if bucket.stale:
            self._compact(bucket)
        return bucket.positions

    def _compact(self, bucket: _Bucket) -> None:
        gens = self._gens
        kept = [p for p, g in zip(bucket.positions, bucket.gens, strict=True) if gens[p] == g]
        bucket.positions = array("q", kept)
        bucket.gens = array("q", [gens[p] for p in kept])
        bucket.stale = 0
