"""A pipeline's results as one row per item: every step's answer beside the others.

The log holds one result per lane (a model of a step); a user reading a pipeline's
output wants the item: what each step said, what it cost and how long it took, the
judge's fields, the item's total, and where it stopped if it did. The log is read in
input order (by line, then by lane in the pipeline's order), so an item's lanes come
together and a row is built from them alone: memory holds one item at a time.

JSONL keeps the nested form (``steps`` -> step -> model -> the lane's fields). CSV
and Parquet flatten it: ``<step>.<column>`` for a step with one model,
``<step>.<model>.<column>`` for one with several, the parsed output's top-level fields
as ``<step>.parsed.<field>`` (a judge's ``verdict``, ``confidence``, ``reasoning`` and
``best`` among them).

An item's ``status`` is ``ok`` when every lane answered; otherwise that of the first
lane (in the pipeline's order) that did not, and ``error`` says where it stopped
(``classify: timeout``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine._config import RunConfig
from engine._lanes import lane_keys
from engine._results import ItemResult, Status
from engine._steps import split_lane

ITEM_COLUMNS = ("id", "status", "error", "cost_usd", "latency_ms")
LANE_COLUMNS = ("status", "output", "cost_usd", "latency_ms", "input_tokens", "output_tokens",
                "error")  # fmt: skip
"""A lane's columns in a flat row (then its parsed fields)."""


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One item's results, in the pipeline's lane order."""

    results: tuple[ItemResult, ...]

    @property
    def first(self) -> ItemResult:
        return self.results[0]

    @property
    def status(self) -> Status:
        stopped = self.stopped
        return "ok" if stopped is None else stopped.status

    @property
    def stopped(self) -> ItemResult | None:
        """The lane the item stopped at (not one skipped because of it), if any."""
        for result in self.results:
            if result.status != "ok" and (result.error is None or result.error.kind != "upstream"):
                return result
        return None

    @property
    def cost_usd(self) -> float:
        return sum(result.cost_usd for result in self.results)


def group_items(results: Iterable[ItemResult]) -> Iterator[ItemRow]:
    """Group results that come in input order into one row per item."""
    group: list[ItemResult] = []
    for result in results:
        if group and (result.line, result.id) != (group[0].line, group[0].id):
            yield ItemRow(tuple(group))
            group = []
        group.append(result)
    if group:
        yield ItemRow(tuple(group))


def nested_row(row: ItemRow) -> dict[str, Any]:
    """The JSONL form: the item, its totals, and each step's lanes by model."""
    stopped = row.stopped
    out: dict[str, Any] = {
        "id": row.first.id,
        "status": row.status,
        "error": _where_stopped(stopped),
        "cost_usd": round(row.cost_usd, 10),
        "latency_ms": _elapsed_ms(row),
        "steps": {},
    }
    for result in row.results:
        step, model = split_lane(result.model)
        out["steps"].setdefault(step, {})[model] = _lane(result)
    out.update(
        (f"input.{name}" if name in out else name, value)
        for name, value in row.first.fields.items()
        if name != "id"
    )
    return out


def flat_columns(
    config: RunConfig, field_names: Iterable[Sequence[str]], parsed: dict[str, list[str]]
) -> list[str]:
    """A flat export's columns: the item's, its fields, then each lane's (``parsed``: the
    parsed field names seen per lane key)."""
    fields: dict[str, None] = {}
    for names in field_names:
        fields.update((_field_column(n), None) for n in names if n != "id")
    columns = [*ITEM_COLUMNS, *fields]
    for key in lane_keys(config):
        prefix = _prefix(config, key)
        columns += [f"{prefix}.{column}" for column in LANE_COLUMNS]
        columns += [f"{prefix}.parsed.{name}" for name in parsed.get(key, ())]
    return columns


def flat_row(config: RunConfig, row: ItemRow) -> dict[str, Any]:
    """The CSV and Parquet form (nested values as JSON text, made so by the writer)."""
    nested = nested_row(row)
    out: dict[str, Any] = {name: nested[name] for name in ITEM_COLUMNS}
    out.update((_field_column(n), v) for n, v in row.first.fields.items() if n != "id")
    for result in row.results:
        prefix = _prefix(config, result.model)
        lane = _lane(result)
        out.update((f"{prefix}.{column}", lane.get(column)) for column in LANE_COLUMNS)
        if isinstance(result.parsed, dict):
            out.update((f"{prefix}.parsed.{k}", v) for k, v in result.parsed.items())
    return out


def parsed_names(results: Iterable[ItemResult]) -> dict[str, list[str]]:
    """The parsed output's field names per lane, in the order first seen."""
    names: dict[str, dict[str, None]] = {}
    for result in results:
        if isinstance(result.parsed, dict):
            names.setdefault(result.model, {}).update(dict.fromkeys(result.parsed))
    return {key: list(found) for key, found in names.items()}


def _prefix(config: RunConfig, key: str) -> str:
    step, model = split_lane(key)
    several = next((len(s.models) > 1 for s in config.steps if s.name == step), False)
    return f"{step}.{model}" if several else step


def _field_column(name: str) -> str:
    return f"input.{name}" if name in ITEM_COLUMNS or "." in name else name


def _lane(result: ItemResult) -> dict[str, Any]:
    error = result.error
    return {
        "status": result.status,
        "output": result.output,
        "parsed": result.parsed,
        "cost_usd": None if result.unpriced else round(result.cost_usd, 10),
        "latency_ms": round(result.latency_ms, 1),
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "error": None if error is None else f"{error.kind}: {error.message}",
    }


def _where_stopped(stopped: ItemResult | None) -> str | None:
    if stopped is None:
        return None
    step = split_lane(stopped.model)[0]
    kind = stopped.error.kind if stopped.error is not None else stopped.status
    return f"{step}: {kind}"


def _elapsed_ms(row: ItemRow) -> float:
    """From the first lane's start to the last one's end (the sum of latencies, when the
    log does not say when they ran)."""
    starts = [r.started_at for r in row.results if r.started_at is not None and r.latency_ms]
    ends = [r.finished_at for r in row.results if r.finished_at is not None and r.latency_ms]
    if starts and ends:
        return round((max(ends) - min(starts)) * 1000, 1)
    return round(sum(r.latency_ms for r in row.results), 1)
