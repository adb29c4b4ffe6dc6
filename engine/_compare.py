"""Which model is worth its price on this data: a scoreboard per step that has several models.

For each model of a step (a run's models, for a run with no steps): the items it
answered, how often a judge preferred its answer (wins, win rate, cost per win), how
often its answer agreed with the other models' (exactly, and for a schema field by
field), its mean cost and latency. A judge's preference is its ``best`` field, read
from every judge step that reads this step's answers. A debate's two steps each get
one: the first answers', then the revised answers' (the ones a judge reads), whose
cost and latency are the model's two calls together: what its final answer took.

It is built one item at a time (``Scoreboard.add``, an item's results together),
so a run of any size is compared in one pass over its log, and an app can keep one
up to date as results come in: an item whose results changed is taken out as it was
counted (``Scoreboard.remove``, every tally being a sum) and added again, at a cost
that depends on the item's lanes, not on the run's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Final

from engine._config import RunConfig
from engine._item_rows import ItemRow
from engine._steps import build_graph, lane_key

_COST_UNIT: Final = 1e-12
"""A millionth of a millionth of a dollar."""
_LATENCY_UNIT: Final = 1e-6
"""A nanosecond, in milliseconds."""


@dataclass(slots=True)
class _Tally:
    results: int = 0
    answered: int = 0
    judged: int = 0
    """Items a judge gave a verdict on while this model had answered."""
    wins: int = 0
    cost: int = 0
    """In ``_COST_UNIT``: sums of whole numbers are the same in any order and after any
    item taken out and added again, so a scoreboard kept up to date live ends equal to one
    folded in one pass."""
    latency: int = 0
    """In ``_LATENCY_UNIT``."""
    compared: int = 0
    agreed: int = 0
    field_compared: dict[str, int] = field(default_factory=dict)
    field_agreed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelScore:
    model: str
    answered: int
    results: int
    wins: int | None
    """None when no judge reads the step."""
    win_rate: float | None
    agreement: float | None
    """Share of the other models' answers to the same items that were the same (None: none
    to compare with)."""
    field_agreement: dict[str, float]
    mean_cost_usd: float | None
    mean_latency_ms: float | None
    cost_per_win_usd: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "answered": self.answered,
            "results": self.results,
            "wins": self.wins,
            "win_rate": self.win_rate,
            "agreement": self.agreement,
            "field_agreement": self.field_agreement,
            "mean_cost_usd": self.mean_cost_usd,
            "mean_latency_ms": self.mean_latency_ms,
            "cost_per_win_usd": self.cost_per_win_usd,
        }


@dataclass(frozen=True, slots=True)
class StepScores:
    step: str
    """``""`` for a run with no steps."""
    items: int
    judges: tuple[str, ...]
    """The lanes whose ``best`` counts as a win."""
    models: tuple[ModelScore, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step or None,
            "items": self.items,
            "judges": list(self.judges),
            "models": [model.as_json() for model in self.models],
        }


class Scoreboard:
    def __init__(self, config: RunConfig) -> None:
        self._steps: dict[str, tuple[str, ...]] = {}
        self._judges: dict[str, tuple[str, ...]] = {}
        self._first: dict[str, str] = {}
        """A debate's revise step -> its first step, whose calls its models' costs include."""
        if not config.steps:
            self._steps[""] = config.models
            self._judges[""] = ()
        else:
            graph = build_graph(config.steps)
            for step in graph.steps:
                judges = tuple(
                    lane
                    for other in graph.steps
                    if other.spec.kind == "judge" and step.name in other.depends
                    for lane in other.lanes
                )
                if len(step.spec.models) > 1 or judges:
                    self._steps[step.name] = step.spec.models
                    self._judges[step.name] = judges
                if step.revises is not None:
                    self._first[step.name] = step.revises
        self._tallies = {
            step: {model: _Tally() for model in models} for step, models in self._steps.items()
        }
        self._items = dict.fromkeys(self._steps, 0)

    @property
    def judges(self) -> Mapping[str, tuple[str, ...]]:
        """The lanes whose ``best`` counts as a win, by compared step."""
        return self._judges

    def add(self, row: ItemRow) -> None:
        """Count one item's results (all of them, as ``group_items`` gives them)."""
        self._count(row, 1)

    def remove(self, row: ItemRow) -> None:
        """Take back an item's results exactly as ``add`` counted them."""
        self._count(row, -1)

    def _count(self, row: ItemRow, sign: int) -> None:
        by_lane = {result.model: result for result in row.results}
        for step, models in self._steps.items():
            tallies = self._tallies[step]
            lanes = {model: by_lane.get(lane_key(step, model)) for model in models}
            if not any(lanes.values()):
                continue
            self._items[step] += sign
            ok: dict[str, Any] = {}
            first = self._first.get(step)
            for model, result in lanes.items():
                if result is None:
                    continue
                tally = tallies[model]
                tally.results += sign
                counted = [result]
                if first is not None and (before := by_lane.get(lane_key(first, model))):
                    counted.append(before)  # a debate's final answer cost both rounds
                for each in counted:
                    tally.cost += sign * round(each.cost_usd / _COST_UNIT)
                    tally.latency += sign * round(each.latency_ms / _LATENCY_UNIT)
                if result.status == "ok":
                    tally.answered += sign
                    ok[model] = result
            for one, other in combinations(ok, 2):
                same = _same(ok[one].output, ok[other].output)
                fields = _field_matches(ok[one].parsed, ok[other].parsed)
                for model in (one, other):
                    tally = tallies[model]
                    tally.compared += sign
                    tally.agreed += sign * same
                    for name, matched in fields.items():
                        tally.field_compared[name] = tally.field_compared.get(name, 0) + sign
                        tally.field_agreed[name] = tally.field_agreed.get(name, 0) + sign * matched
            for judge in self._judges[step]:
                verdict = by_lane.get(judge)
                if verdict is None or verdict.status != "ok":
                    continue
                best = verdict.parsed.get("best") if isinstance(verdict.parsed, dict) else None
                for model in ok:
                    tallies[model].judged += sign
                    tallies[model].wins += sign * (best == model)

    def scores(self) -> tuple[StepScores, ...]:
        return tuple(
            StepScores(
                step,
                self._items[step],
                self._judges[step],
                tuple(
                    _score(model, tally, judged=bool(self._judges[step]))
                    for model, tally in self._tallies[step].items()
                ),
            )
            for step in self._steps
        )


def compare(config: RunConfig, rows: Iterable[ItemRow]) -> tuple[StepScores, ...]:
    board = Scoreboard(config)
    for row in rows:
        board.add(row)
    return board.scores()


def _score(model: str, tally: _Tally, *, judged: bool) -> ModelScore:
    return ModelScore(
        model=model,
        answered=tally.answered,
        results=tally.results,
        wins=tally.wins if judged else None,
        win_rate=_share(tally.wins, tally.judged) if judged else None,
        agreement=_share(tally.agreed, tally.compared),
        field_agreement={
            name: tally.field_agreed[name] / count
            for name, count in tally.field_compared.items()
            if count
        },
        mean_cost_usd=_share(tally.cost * _COST_UNIT, tally.results),
        mean_latency_ms=_share(tally.latency * _LATENCY_UNIT, tally.results),
        cost_per_win_usd=_share(tally.cost * _COST_UNIT, tally.wins) if judged else None,
    )


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _same(one: str | None, other: str | None) -> bool:
    return (one or "").strip() == (other or "").strip()


def _field_matches(one: Any, other: Any) -> Mapping[str, bool]:
    if not isinstance(one, dict) or not isinstance(other, dict):
        return {}
    return {name: one.get(name) == other.get(name) for name in dict.fromkeys([*one, *other])}
