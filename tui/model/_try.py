"""A try's answers as they arrive: Setup's try panel's state, folded from the try's events.

``ItemFinished`` carries each lane's whole result, so a try is drawn from its event
stream alone, as every screen draws a run: no log is read back. Every lane is kept
(a try of one model shows its answers too, where the Compare screen's model keeps
only what a comparison reads); the judges' lanes are told apart so their verdicts
go after the answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine import (
    Event,
    ItemFinished,
    ItemResult,
    ItemRow,
    RunConfig,
    RunStarted,
    Scoreboard,
)


class TryModel:
    """Every item's results of one try."""

    def __init__(self, config: RunConfig) -> None:
        self.judges = frozenset(
            lane for lanes in Scoreboard(config).judges.values() for lane in lanes
        )
        self._rank: dict[str, int] = {}
        """Each lane's place in the pipeline (``RunStarted.models``)."""
        self._items: dict[str, dict[str, ItemResult]] = {}

    def apply_all(self, events: Iterable[Event]) -> bool:
        """Fold ``events``; whether anything the panel shows moved."""
        moved = False
        for event in events:
            if isinstance(event, ItemFinished):
                result = event.result
                self._items.setdefault(result.id, {})[result.model] = result
                moved = True
            elif isinstance(event, RunStarted):
                self._rank = {lane: rank for rank, lane in enumerate(event.models)}
        return moved

    def rows(self) -> list[ItemRow]:
        """One row per item in input order, its results in the pipeline's lane order."""
        rank = self._rank
        rows = [
            ItemRow(tuple(sorted(results.values(), key=lambda r: rank.get(r.model, len(rank)))))
            for results in self._items.values()
        ]
        return sorted(rows, key=lambda row: row.first.line)

    def lanes(self) -> tuple[list[str], list[str]]:
        """The lanes that answered so far, in the pipeline's order: the answers', the judges'."""
        seen = {lane for results in self._items.values() for lane in results}
        ordered = sorted(seen, key=lambda lane: self._rank.get(lane, len(self._rank)))
        answers = [lane for lane in ordered if lane not in self.judges]
        return answers, [lane for lane in ordered if lane in self.judges]
