"""The Setup form's steps as plain data: what the user typed per step, and the run's steps.

Setup's run is step 1 (the form's own prompt, system prompt, schema and models)
and the steps the user adds or a pipeline file gives. Each is a ``StepDraft`` of
texts; ``step_specs`` turns them into the engine's ``StepSpec`` and checks them
with the engine's own ``build_graph`` (names, what each prompt reads, cycles), and
``missing_fields`` with the run's own rule (a placeholder the first item lacks),
so the form shows what the run would refuse, before Start, in the engine's words.

A step opened from a pipeline file keeps what the form does not edit (its parsed
schema, output limit, temperature and parameters) in ``carried``: a file opened and
started untouched gives the steps the CLI's ``--pipeline`` would.

Nothing here imports Textual.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import ValidationError

from engine import (
    ConfigError,
    Estimate,
    StepError,
    StepSpec,
    build_graph,
    load_schema,
    split_lane,
)
from tui import _format

StepKind = Literal["plain", "judge", "revise"]
"""As the engine's: a plain step, a judge, or a debate's revise step."""
FIRST_STEP: Final = "answer"
"""Step 1's name until the user names it: the name ``--judge`` gives the answering step."""
JUDGE_STEP: Final = "judge"


@dataclass(frozen=True, slots=True)
class StepDraft:
    """One step as the form holds it: texts, and the models picked for it."""

    name: str
    models: tuple[str, ...] = ()
    prompt: str = ""
    """Blank: the judge's built-in prompt, or for step 1 the item's default."""
    system: str = ""
    schema_ref: str = ""
    """A JSON Schema file or ``module:Model``; blank: the carried schema, if any."""
    kind: StepKind = "plain"
    carried: StepSpec | None = None
    """The step as a pipeline file gave it: what the form does not edit comes from here."""


def draft_of(spec: StepSpec) -> StepDraft:
    """A file's step as the form shows it."""
    return StepDraft(
        name=spec.name,
        models=spec.models,
        prompt=spec.prompt or "",
        system=spec.system or "",
        kind=spec.kind,
        carried=spec,
    )


def step_specs(drafts: Sequence[StepDraft]) -> tuple[StepSpec, ...]:
    """The run's steps, checked as the run checks them; ``StepError`` names the step."""
    specs = tuple(_spec(draft, index) for index, draft in enumerate(drafts))
    build_graph(specs)
    return specs


def _spec(draft: StepDraft, index: int) -> StepSpec:
    carried = draft.carried
    name = draft.name.strip()
    schema = None if carried is None else carried.output_schema
    if draft.schema_ref.strip():
        try:
            schema = load_schema(draft.schema_ref.strip())
        except ConfigError as exc:
            message = str(exc).replace("--schema", "schema")  # as a pipeline file says it
            raise StepError(f"step {name}: {message}", index, "schema") from None
    try:
        return StepSpec(
            name=name,
            models=draft.models,
            prompt=draft.prompt if draft.prompt.strip() else None,
            system=draft.system if draft.system.strip() else None,
            output_schema=schema,
            max_tokens=None if carried is None else carried.max_tokens,
            temperature=None if carried is None else carried.temperature,
            params={} if carried is None else carried.params,
            kind=draft.kind,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        message = str(err["msg"]).removeprefix("Value error, ")
        raise StepError(f"step {index + 1}: {message}", index, "name") from None


def with_first(drafts: Sequence[StepDraft], **fields: object) -> tuple[StepDraft, ...]:
    """``drafts`` with step 1's texts and models replaced: the form's own fields give them."""
    return (dataclasses.replace(drafts[0], **fields), *drafts[1:])  # type: ignore[arg-type]


def missing_fields(specs: Sequence[StepSpec], fields: Sequence[str]) -> str:
    """The first placeholder of a step's prompt that is neither another step's answer nor
    a field of the items (``fields``: the first item's), as the run would refuse it; ""."""
    for step in build_graph(specs).steps:
        unknown = [name for name in step.item_fields if name not in fields]
        if unknown:
            return (
                f"step {step.name}'s prompt uses {{{unknown[0]}}}, which is no step's answer "
                f"and no field of the items (fields: {', '.join(fields)})"
            )
    return ""


@dataclass(frozen=True, slots=True)
class StepCost:
    """What one step's calls would cost over the input, summed over its models."""

    step: str
    likely: float | None
    high: float | None
    """The worst case the cap reserves; None where a model's price is unknown."""


def step_costs(found: Estimate) -> list[StepCost]:
    """The estimate per step, in the run's order; empty for a run with no steps."""
    grouped: dict[str, list[tuple[float | None, float | None]]] = {}
    for model in found.models:
        step, _ = split_lane(model.model)
        if not step:
            return []
        grouped.setdefault(step, []).append((model.cost_likely, model.cost_high))
    return [
        StepCost(step, total_of(c[0] for c in costs), total_of(c[1] for c in costs))
        for step, costs in grouped.items()
    ]


def total_of(values: Iterable[float | None]) -> float | None:
    """The sum, or None when any figure is unknown (a model with no price)."""
    figures = list(values)
    return None if None in figures else sum(f for f in figures if f is not None)


def step_lines(found: Estimate) -> str:
    """One line per step: its likely cost and the worst case the cap holds ("" if none)."""
    costs = step_costs(found)
    if not costs:
        return ""
    width = max(len(cost.step) for cost in costs)
    return "".join(
        f"{cost.step:<{width}} ~{_money(cost.likely)} ≤{_money(cost.high)}\n" for cost in costs
    )


def _money(usd: float | None) -> str:
    return "unknown" if usd is None else _format.money(usd)
