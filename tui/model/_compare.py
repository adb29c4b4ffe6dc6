"""A run's models compared as results arrive: the Compare screen's state, folded from events.

``ItemFinished`` carries each lane's whole result (answer, parsed fields, cost,
latency), so the scoreboard needs nothing the event stream does not give: a live run
is folded from the events the run screen drains, a past run from its replay. Folding
an event only files the result under its item (a dict insert, on the run screen's
tick, whether the Compare screen is open or not); ``refresh``, called by the screen
about once a second, takes each item that changed since out of the engine's
``Scoreboard`` as it was counted and adds it again with its new results. A refresh
costs the items that changed since the last one, never the whole run, and the
scoreboard ends equal to ``batchdeck compare``'s (its tallies are sums of whole
numbers, the same in any order).

Only the lanes a comparison reads are kept: those of every step with several models
or a judge, and the judges'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine import (
    Event,
    ItemFinished,
    ItemResult,
    ItemRow,
    RunConfig,
    RunFinished,
    RunStarted,
    Scoreboard,
    StepScores,
    split_lane,
)


class ComparisonModel:
    """The compared steps' scores and every item's compared results, in the order the
    items were first seen."""

    def __init__(self, config: RunConfig) -> None:
        self._board = Scoreboard(config)
        self._steps = frozenset(self._board.judges)
        self._judges = frozenset(lane for lanes in self._board.judges.values() for lane in lanes)
        self._rank: dict[str, int] = {}
        """Each lane's place in the pipeline (``RunStarted.models``): an item's results in
        that order, as the log's readers give them."""
        self._pending: dict[str, dict[str, ItemResult]] = {}
        """Results not yet counted, by item then lane."""
        self._counted: dict[str, ItemRow] = {}
        """Each item as the scoreboard counts it."""
        self._scores = self._board.scores()
        self.finished = False
        """A ``RunFinished`` was folded: the run (or its replay) has published everything."""

    @property
    def compared(self) -> bool:
        """Whether the run has anything to compare (a step with several models or a judge)."""
        return bool(self._steps)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, ItemFinished):
                result = event.result
                lane = result.model
                if lane in self._judges or split_lane(lane)[0] in self._steps:
                    self._pending.setdefault(result.id, {})[lane] = result
            elif isinstance(event, RunStarted):
                self._rank = {lane: rank for rank, lane in enumerate(event.models)}
                self.finished = False
            elif isinstance(event, RunFinished):
                self.finished = True

    def refresh(self) -> list[str]:
        """Count what came in since the last refresh; the ids of the items that changed."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, {}
        board, counted, rank = self._board, self._counted, self._rank
        for id, results in pending.items():
            old = counted.get(id)
            if old is not None:
                board.remove(old)
                results = {r.model: r for r in old.results} | results
            ordered = sorted(results.values(), key=lambda r: rank.get(r.model, len(rank)))
            counted[id] = row = ItemRow(tuple(ordered))
            board.add(row)
        self._scores = self._board.scores()
        return list(pending)

    def scores(self) -> tuple[StepScores, ...]:
        """Every compared step's scores, as of the last ``refresh``."""
        return self._scores

    def row(self, id: str) -> ItemRow:
        return self._counted[id]

    def rows(self) -> Sequence[ItemRow]:
        """Every item counted so far, in input order (a snapshot: O(n log n))."""
        return sorted(self._counted.values(), key=lambda row: row.first.line)
