"""A run as a small graph of steps: what each step is, what its prompt reads, in what order.

A step has a name, one or more models, a prompt template, and optionally a system
prompt, a schema, an output limit, a temperature and passed-through parameters. A
later step's template reads earlier steps' answers as placeholders:

- ``{extract.output}``: the step's answer (a step with one model), ``{extract.parsed}``
  its parsed object as JSON, ``{extract.parsed.entities}`` one field of it (the
  step's schema must declare the field), ``{extract.prompt}`` the prompt it was sent;
- ``{extract.answers}``: every model's answer, each under a label naming its model,
  and ``{answers}``: those of the step just before this one in the file;
- anything else is a field of the item, as in a run with no steps.

A step depends on every step it reads; the graph must be acyclic, and everything it
reads must exist: those checks run here, before any call, and name the step and
what is wrong (``StepError``; the pipeline file's reader adds the line).

Each (step, model) pair is a *lane*: it has its own results, keyed in the log and
in events as ``step/model`` (``lane_key``). A run with no steps has one implicit
step whose lanes are its models, keyed by the model alone, so its log, its events
and its exports are exactly what they were before steps existed.

The judge is a step like any other (``kind = "judge"``) with a built-in prompt and a
schema giving ``verdict``, ``confidence``, ``reasoning`` and ``best`` (the model
whose answer it preferred), over the answers of the step before it.

A debate is two steps (``debate_steps``): the models answer (a plain step), then each
revises its answer once in a ``revise`` step named ``<step>-revised``, the only kind
whose lanes are sent different prompts: each model's shows the task (``{task}``), its
own first answer (``{own_answer}``) and the other models' first answers under their
labels (``{other_answers}``). The revise step has the same models and settings as the
step it revises, and its ``.prompt`` is that step's (the task): so the step after a
debate, a judge among them, reads the revised answers as ``{answers}`` and the task
as it would after any step. A model whose first answer failed does not revise; the
others do, seeing the first answers there are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine._errors import ConfigError
from engine._template import PromptTemplate, render_item

StepKind = Literal["plain", "judge", "revise"]
STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
ANSWERS = "answers"
"""The placeholder for the previous step's labelled answers."""
_PARTS = ("output", "parsed", "answers", "prompt")
REVISED = "-revised"
"""What a debate's revise step is named: its first step's name and this."""
TASK, OWN_ANSWER, OTHER_ANSWERS = "task", "own_answer", "other_answers"
"""A revise step's own placeholders: the task, this model's first answer, the others'."""
_REVISING = {TASK: "prompt", OWN_ANSWER: "own", OTHER_ANSWERS: "others"}
NO_OTHER_ANSWER = "(no other model answered)"


class StepSpec(BaseModel):
    """One step of a pipeline, as a pipeline file (or ``--judge``) declares it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    models: tuple[str, ...]
    """Checked as the run's are (``RunConfig.models`` holds every step's)."""
    prompt: str | None = None
    """None: the judge's built-in prompt, or for a first step the default for the item."""
    system: str | None = None
    output_schema: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    """None: the run's ``--max-tokens``."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    params: dict[str, Any] = Field(default_factory=dict)
    kind: StepKind = "plain"

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not STEP_NAME.match(name) or name == ANSWERS:
            raise ValueError(
                f"step name {name!r} must be letters, digits, _ or - (not starting with a "
                f"digit or -), and not {ANSWERS!r}"
            )
        return name


class StepError(ConfigError):
    """A step that cannot run: ``index`` (in the file's order) and ``key`` locate it."""

    def __init__(self, message: str, index: int, key: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.key = key


def lane_key(step: str, model: str) -> str:
    """How a lane's results are keyed: the model alone for a run's implicit step."""
    return f"{step}/{model}" if step else model


def split_lane(key: str) -> tuple[str, str]:
    """``(step, model)`` of a lane key (step ``""`` for a run with no steps). A step name
    holds no ``:``, and every model does before any ``/``, so this is unambiguous."""
    head, sep, rest = key.partition("/")
    if sep and ":" not in head:
        return head, rest
    return "", key


@dataclass(frozen=True, slots=True)
class Ref:
    """One placeholder of a step's template that reads another step."""

    placeholder: str
    step: str
    part: str
    """``output``, ``parsed``, ``answers`` or ``prompt``."""
    field: str | None = None
    """For ``parsed.<field>``."""


@dataclass(frozen=True, slots=True)
class Step:
    """A checked step: its template parsed, what it reads, what it depends on."""

    spec: StepSpec
    template: PromptTemplate | None
    """None: the item's default template (a first step without a prompt)."""
    refs: tuple[Ref, ...]
    depends: tuple[str, ...]
    item_fields: tuple[str, ...]
    """The placeholders that are fields of the item."""
    lanes: tuple[str, ...]
    """Its lanes' keys, in the order of its models."""
    revises: str | None = None
    """For a revise step: the step whose answers its models revise."""
    name: str = field(init=False)
    """``spec.name``, kept as a plain attribute: every item asks it several times a call."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.spec.name)


@dataclass(frozen=True, slots=True)
class Graph:
    """A pipeline's steps in an order where every step comes after those it reads."""

    steps: tuple[Step, ...]
    by_name: Mapping[str, Step] = field(init=False, repr=False, compare=False)
    readers: Mapping[str, tuple[Step, ...]] = field(init=False, repr=False, compare=False)
    """The steps that read each step directly, in order: the only ones its answers can
    make ready."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {step.name: step for step in self.steps})
        readers = {
            name: tuple(step for step in self.steps if name in step.depends)
            for name in self.by_name
        }
        object.__setattr__(self, "readers", readers)

    def step(self, name: str) -> Step:
        return self.by_name[name]

    @property
    def roots(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if not step.depends)

    @property
    def lanes(self) -> tuple[str, ...]:
        return tuple(lane for step in self.steps for lane in step.lanes)

    def revision_of(self, name: str) -> Step | None:
        """The revise step of ``name``'s answers, if it has one."""
        return next((step for step in self.steps if step.revises == name), None)

    def after(self, name: str) -> tuple[Step, ...]:
        """Every step that reads ``name``, directly or not."""
        out: dict[str, Step] = {}
        for step in self.steps:
            if name in step.depends or any(dep in out for dep in step.depends):
                out[step.name] = step
        return tuple(out.values())


def build_graph(specs: Sequence[StepSpec]) -> Graph:
    """Check the steps (names, what each reads, cycles) and order them; ``StepError``
    names the step and what is wrong."""
    names: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.name in names:
            raise StepError(f"step {spec.name}: a second step has this name", index, "name")
        names[spec.name] = index
    steps: dict[str, Step] = {}
    for index, spec in enumerate(specs):
        previous = specs[index - 1].name if index else None
        steps[spec.name] = _checked(spec, index, previous, specs)
    order: list[Step] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise StepError(f"step {name}: the steps read each other in a cycle ({cycle})",
                            names[name], "prompt")  # fmt: skip
        state[name] = 1
        for dep in steps[name].depends:
            visit(dep, (*path, name))
        state[name] = 2
        order.append(steps[name])

    for spec in specs:
        visit(spec.name, ())
    return Graph(tuple(order))


def _checked(spec: StepSpec, index: int, previous: str | None, specs: Sequence[StepSpec]) -> Step:
    by_name = {s.name: s for s in specs}
    if not spec.models:
        raise StepError(f"step {spec.name}: a step needs at least one model", index, "models")
    text = spec.prompt
    if text is None and spec.kind == "judge":
        if previous is None:
            raise StepError(f"step {spec.name}: a judge needs a step before it", index, "kind")
        text = default_judge_prompt(previous)
    revises = None
    if spec.kind == "revise":
        revises = _revised(spec, index, previous, by_name)
        text = default_revise_prompt() if text is None else text
    if text is None and index:
        raise StepError(f"step {spec.name}: a step after the first needs a prompt", index, "prompt")
    if spec.kind == "judge" and previous is not None and spec.output_schema is None:
        spec = spec.model_copy(update={"output_schema": judge_schema(by_name[previous].models)})
    try:
        template = None if text is None else PromptTemplate.parse(text)
    except ConfigError as exc:
        raise StepError(f"step {spec.name}: {exc}", index, "prompt") from None
    refs: list[Ref] = []
    item_fields: list[str] = []
    for name in template.names if template is not None else ():
        ref = _ref(name, spec, index, previous, by_name)
        if ref is None:
            item_fields.append(name)
        else:
            refs.append(ref)
    depends = tuple(dict.fromkeys([*([revises] if revises else []), *(r.step for r in refs)]))
    lanes = tuple(lane_key(spec.name, model) for model in spec.models)
    return Step(spec, template, tuple(refs), depends, tuple(item_fields), lanes, revises)


def _revised(
    spec: StepSpec, index: int, previous: str | None, by_name: Mapping[str, StepSpec]
) -> str:
    """The step a revise step revises (the one before it), checked."""
    if previous is None:
        raise StepError(f"step {spec.name}: a revise step needs a step before it", index, "kind")
    first = by_name[previous]
    if len(first.models) < 2:
        raise StepError(
            f"step {previous}: a debate needs two or more models (it has "
            f"{len(first.models)}): each revises its answer seeing the others'",
            index,
            "models",
        )
    if spec.models != first.models:
        raise StepError(
            f"step {spec.name}: a revise step has the models of the step it revises "
            f"({', '.join(first.models)})",
            index,
            "models",
        )
    return previous


def _ref(
    name: str,
    spec: StepSpec,
    index: int,
    previous: str | None,
    by_name: Mapping[str, StepSpec],
) -> Ref | None:
    """What placeholder ``name`` of ``spec`` reads, or None for a field of the item."""
    where = f"step {spec.name}: the prompt's {{{name}}}"
    if spec.kind == "revise" and name in _REVISING and previous is not None:
        return Ref(name, previous, _REVISING[name])
    if name == ANSWERS:
        if previous is None:
            raise StepError(f"{where} reads the step before it, and there is none", index, "prompt")
        return Ref(name, previous, ANSWERS)
    head, dot, rest = name.partition(".")
    if not dot:
        return None
    if head not in by_name:
        if rest.partition(".")[0] in _PARTS:
            raise StepError(f"{where} reads step {head}, and there is no such step", index,
                            "prompt")  # fmt: skip
        return None  # a dotted field of the item
    if head == spec.name:
        raise StepError(f"{where} reads its own step", index, "prompt")
    read = by_name[head]
    part, dot, field = rest.partition(".")
    if part not in _PARTS or (dot and part != "parsed") or (dot and not field):
        raise StepError(
            f"{where}: a step gives .output, .parsed, .parsed.FIELD, .answers or .prompt",
            index,
            "prompt",
        )
    if part == "output" and len(read.models) > 1:
        raise StepError(
            f"{where}: step {head} has {len(read.models)} models; read {{{head}.answers}}",
            index,
            "prompt",
        )
    if part == "parsed":
        schema = read.output_schema
        if schema is None and read.kind == "judge":
            schema = judge_schema(())
        if schema is None:
            raise StepError(f"{where}: step {head} has no schema, so nothing is parsed", index,
                            "prompt")  # fmt: skip
        props = schema.get("properties")
        if field and isinstance(props, dict) and props:
            if field not in props:
                raise StepError(
                    f"{where}: step {head}'s schema has no field {field} "
                    f"(it has: {', '.join(props)})",
                    index,
                    "prompt",
                )
    return Ref(name, head, part, field or None)


def default_judge_prompt(previous: str) -> str:
    return (
        "Several models were given the same task. Judge their answers.\n\n"
        f"The task:\n{{{previous}.prompt}}\n\n"
        f"The answers, each under the model that gave it:\n{{{previous}.answers}}\n\n"
        "Reply with: verdict, the best answer to the task, written from the answers and "
        "correcting what they got wrong; confidence, high, medium or low; reasoning, why, in "
        "a few sentences; best, the model whose answer you preferred."
    )


REVISE_OPENING = "You answered the task below, and so did other models."
YOUR_ANSWER = "\n\nYour first answer:\n"
THEIR_ANSWERS = "\n\nThe other models' answers, each under the model that gave it:\n"
"""The built-in revise prompt's headings (``simulate`` finds the answers by them)."""


def default_revise_prompt() -> str:
    return (
        f"{REVISE_OPENING} Read their answers, then give your final answer: keep yours if "
        "you still think it right, or revise it where theirs show you were wrong or missed "
        "something. Reply with the final answer only, in the form the task asks for.\n\n"
        f"The task:\n{{{TASK}}}{YOUR_ANSWER}{{{OWN_ANSWER}}}{THEIR_ANSWERS}{{{OTHER_ANSWERS}}}"
    )


def debate_steps(spec: StepSpec, revise_prompt: str | None = None) -> tuple[StepSpec, StepSpec]:
    """A debate over ``spec``: its models answer, then each revises its answer once seeing
    the others' (``revise_prompt``, else the built-in one), in step ``<name>-revised``."""
    first = spec.model_copy(update={"kind": "plain"})
    revision = spec.model_copy(
        update={"name": f"{spec.name}{REVISED}", "prompt": revise_prompt, "kind": "revise"}
    )
    return first, revision


def judge_schema(models: Sequence[str]) -> dict[str, Any]:
    """The judge's output: ``best`` is one of the judged step's models."""
    return {
        "type": "object",
        "properties": {
            "verdict": {"type": "string"},
            "confidence": {"type": "string", "enum": ["high", "medium", "low"]},
            "reasoning": {"type": "string"},
            "best": {"type": "string", "enum": list(models)},
        },
        "required": ["verdict", "confidence", "reasoning", "best"],
        "additionalProperties": False,
    }


def judge_steps(
    models: Sequence[str],
    judge: str | None,
    *,
    prompt: str | None,
    system: str | None,
    schema: dict[str, Any] | None,
    judge_prompt: str | None = None,
    debate: bool = False,
    revise_prompt: str | None = None,
) -> tuple[StepSpec, ...]:
    """``--judge`` and ``--debate``: the run's models answer (step ``answer``), revise their
    answers seeing each other's (``answer-revised``) with ``debate``, then the judge judges."""
    answer = StepSpec(name="answer", models=tuple(models), prompt=prompt, system=system,
                      output_schema=schema)  # fmt: skip
    steps = debate_steps(answer, revise_prompt) if debate else (answer,)
    if judge is None:
        return steps
    return (*steps, StepSpec(name="judge", models=(judge,), prompt=judge_prompt, kind="judge"))


@dataclass(frozen=True, slots=True)
class Answer:
    """What a finished lane gave, as a later step reads it."""

    output: str | None
    parsed: Any


def label(model: str, text: str | None) -> str:
    return f"--- {model} ---\n{text or ''}"


def step_values(
    step: Step,
    fields: Mapping[str, Any],
    answers: Mapping[str, Answer],
    prompts: Mapping[str, str],
    graph: Graph,
    model: str | None = None,
) -> dict[str, Any]:
    """The values ``step``'s template is rendered with: the item's fields and what it reads
    of earlier steps (``answers`` by lane key, the prompts they were sent by step name);
    ``model``: the lane of a revise step this is for."""
    if not step.refs:
        return fields if isinstance(fields, dict) else dict(fields)
    values = dict(fields)
    for ref in step.refs:
        read = graph.step(ref.step)
        if ref.part == ANSWERS:
            values[ref.placeholder] = _labelled(read, answers)
        elif ref.part == "prompt":
            values[ref.placeholder] = prompts.get(read.name)
        elif ref.part == "own":
            values[ref.placeholder] = _output(answers, lane_key(read.name, model or ""))
        elif ref.part == "others":
            values[ref.placeholder] = _labelled(read, answers, but=model) or NO_OTHER_ANSWER
        else:
            got = answers.get(read.lanes[0])
            parsed = None if got is None else got.parsed
            if ref.part == "output":
                values[ref.placeholder] = None if got is None else got.output
            elif ref.field is None:
                values[ref.placeholder] = parsed
            else:
                values[ref.placeholder] = (
                    parsed.get(ref.field) if isinstance(parsed, dict) else None
                )
    return values


def _labelled(read: Step, answers: Mapping[str, Answer], but: str | None = None) -> str:
    """``read``'s answers, each under its model (those that answered, but ``but``'s)."""
    return "\n\n".join(
        label(model, answers[lane].output)
        for model, lane in zip(read.spec.models, read.lanes, strict=True)
        if model != but and lane in answers
    )


def _output(answers: Mapping[str, Answer], lane: str) -> str | None:
    got = answers.get(lane)
    return None if got is None else got.output


def render_step(
    step: Step,
    graph: Graph,
    template_of: Callable[[Step], PromptTemplate],
    fields: Mapping[str, Any],
    answers: Mapping[str, Answer],
    prompts: dict[str, str],
) -> dict[str, str]:
    """What each lane of ``step`` sends for an item with ``fields``, by lane key, given the
    ``answers`` of its earlier lanes: every lane the same prompt, but in a revise step,
    where each model whose first answer is in gets its own. ``prompts`` holds (and gets)
    each step's ``.prompt``, by name, for a step that reads another's prompt (a revise
    step's is its task). A first step without a prompt of its own lets the item's own
    prompt win; any other names every placeholder it lacks (``ValueError``)."""
    for name in (*(ref.step for ref in step.refs if ref.part == "prompt"), step.revises):
        if name is not None and name not in prompts:
            render_step(graph.step(name), graph, template_of, fields, answers, prompts)
    template = template_of(step)
    if step.revises is None:
        prompt = prompts.get(step.name)
        if prompt is None:
            prompt = _rendered(step, template, step_values(step, fields, answers, prompts, graph))
            prompts[step.name] = prompt
        return dict.fromkeys(step.lanes, prompt)
    first = graph.step(step.revises)
    prompts[step.name] = prompts[first.name]  # its task
    return {
        lane: _rendered(step, template, step_values(step, fields, answers, prompts, graph, model))
        for model, lane, answered in zip(step.spec.models, step.lanes, first.lanes, strict=True)
        if answered in answers
    }


def _rendered(step: Step, template: PromptTemplate, values: Mapping[str, Any]) -> str:
    if step.spec.prompt is None and step.spec.kind == "plain":
        return render_item(template, values)  # a first step: the item's own prompt wins
    missing = template.missing(values)
    if missing:
        raise ValueError(f"no field {', '.join(sorted(missing))} for its prompt")
    return template.render(values)


def reads_no_fields(step: Step, graph: Graph) -> bool:
    """``prompt_bound`` of ``step`` is the same for every item: its prompt (and every prompt
    it reads) is a template of its own that names no field of the item."""
    return (
        step.template is not None
        and not step.item_fields
        and all(ref.part != "prompt" or reads_no_fields(graph.step(ref.step), graph)
                for ref in step.refs)
    )  # fmt: skip


def prompt_bound(
    step: Step,
    fields: Mapping[str, Any],
    graph: Graph,
    max_tokens: int,
    template_of: Callable[[Step], PromptTemplate],
) -> int:
    """A bound, in tokens, on the prompt ``step`` will send for an item with ``fields``,
    known before the steps it reads have answered: its template with the item's fields
    (UTF-8 bytes, as every input bound counts them), plus each answer it reads at its
    step's output limit (and its label), plus each prompt it reads, bounded the same way
    (a first step without a prompt sends the item's own or ``template_of`` it, as sent).

    Reading an answer back is counted at the tokens it was written in: no tokenizer splits
    a text into more tokens than the one that wrote it did by much, but this is the one
    place the bound leans on that, so the step's real prompt is measured again when it
    starts, and any difference is reserved then."""
    empty = dict(fields)
    empty.update((ref.placeholder, "") for ref in step.refs)
    template = step.template
    if template is not None:
        total = len(template.render(empty).encode())
    else:
        try:
            total = len(render_item(template_of(step), fields).encode())
        except ValueError:  # the item cannot be sent: it fails at its first step
            total = 0
    for ref in step.refs:
        read = graph.step(ref.step)
        limit = read.spec.max_tokens or max_tokens
        each = [limit + len(label(m, "").encode()) + 2 for m in read.spec.models]
        if ref.part == ANSWERS:
            total += sum(each)
        elif ref.part == "others":  # all the models' but one
            total += max(sum(each) - min(each), len(NO_OTHER_ANSWER))
        elif ref.part == "prompt":
            total += prompt_bound(read, fields, graph, max_tokens, template_of)
        else:
            total += limit
    return total
