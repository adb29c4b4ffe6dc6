"""What each lane's calls send: a (step, model) pair's template, system prompt, schema, limits.

An execution's results, events, log records and caps are per *lane* (see
``engine._steps``): a model of a run with no steps, or one model of one step of a
pipeline. Everything a call needs that was per run before steps is per lane here,
so the dispatcher and the workers look up ``plan.lanes[key]`` where they read the
run's config, and a run with no steps gets one lane per model carrying exactly
the run's settings.

A step's settings fall back to the run's: its output limit, temperature and stop
sequences; its parameters are the run's with the step's on top. Its system prompt
and schema are its own (a judge is not sent the answering step's system prompt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine._config import RunConfig, provider_model
from engine._errors import ConfigError
from engine._results import ItemResult
from engine._schema import OutputValidator
from engine._steps import Answer, Graph, Step, build_graph, lane_key, render_step
from engine._template import PromptTemplate, default_template_for, render_item
from engine._tokens import answers_per_call, request_framing
from engine.providers import default_timeout


@dataclass(frozen=True, slots=True)
class Lane:
    key: str
    """What its results are keyed by: the model, or ``step/model``."""
    model: str
    """``provider:model``: its provider, price, rate limiter and key."""
    sent_model: str
    """The provider's own name of the model, as each request sends it (``gpt-4o-mini``)."""
    step: Step | None
    """None for a run with no steps."""
    template: PromptTemplate
    system: str | None
    schema: dict[str, Any] | None
    params: Mapping[str, Any]
    temperature: float | None
    max_tokens: int
    validator: OutputValidator | None
    framing: int
    """Input tokens a request carries besides its prompts (``request_framing``)."""
    answers: int
    """Answers one call may be billed for (``n`` and the like)."""
    timeout_s: float
    """Each call's timeout: ``--timeout``, else its provider's default (longer on a local
    server)."""


def lanes_for(config: RunConfig, template: PromptTemplate) -> dict[str, Lane]:
    """Every lane of the run, by key. ``template`` is the run's (or, for a first step
    without a prompt, the default for the input's fields)."""
    graph = build_graph(config.steps) if config.steps else None
    if graph is None:
        validator = None if config.output_schema is None else OutputValidator(config.output_schema)
        return {
            model: _lane(config, model, None, template, config.system, config.output_schema,
                         config.params, None, None, validator)
            for model in config.models
        }  # fmt: skip
    lanes: dict[str, Lane] = {}
    for step in graph.steps:
        spec = step.spec
        schema = spec.output_schema
        validator = None if schema is None else OutputValidator(schema)
        params = {**config.params, **spec.params}
        for model in spec.models:
            key = lane_key(spec.name, model)
            lanes[key] = _lane(config, model, step, step.template or template, spec.system,
                               schema, params, spec.temperature, spec.max_tokens, validator,
                               key=key)  # fmt: skip
    return lanes


def graph_of(config: RunConfig) -> Graph | None:
    return build_graph(config.steps) if config.steps else None


def lane_keys(config: RunConfig) -> tuple[str, ...]:
    """Every lane's key in the run's order: its models, or each step's (in the file's
    order) in turn; an item has one result per lane."""
    return build_graph(config.steps).lanes if config.steps else config.models


def sent_prompt(
    config: RunConfig,
    lane: str,
    fields: Mapping[str, Any],
    earlier: Mapping[str, ItemResult] | None = None,
    *,
    template: str | None = None,
) -> str:
    """The prompt ``lane`` sends for an item with ``fields``, rendered again as the engine
    renders it (the log keeps answers, not prompts): a pipeline step's template with what
    it reads of the ``earlier`` lanes' results (by lane key; their ok answers), else the
    run's template or the item's own prompt. ``template`` replaces the lane's (an edit, which
    wins over the item's own). ``ValueError`` says why it cannot be rendered (a placeholder
    with no value, an answer it reads that is not in)."""
    try:
        edited = None if template is None else PromptTemplate.parse(template)
        run_template = PromptTemplate.parse(config.prompt or default_template_for(list(fields)))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if not config.steps:
        return render_item(edited or run_template, fields, edited=edited is not None)
    lanes = lanes_for(config, run_template)
    step = lanes[lane].step if lane in lanes else None
    if step is None:
        raise ValueError(f"the run has no lane {lane}")
    answers = {
        key: Answer(result.output, result.parsed)
        for key, result in (earlier or {}).items()
        if result.status == "ok"
    }

    def template_of(rendered: Step) -> PromptTemplate:
        if edited is not None and rendered.name == step.name:
            return edited
        return lanes[rendered.lanes[0]].template

    try:
        prompts = render_step(step, build_graph(config.steps), template_of, fields, answers, {})
    except KeyError as exc:
        raise ValueError(f"it reads {exc.args[0]}, which has no answer") from None
    if lane not in prompts:  # a revision whose model's first answer is not in
        raise ValueError(f"it reads {lane_key(step.revises or '', lanes[lane].model)}, which "
                         "has no answer")  # fmt: skip
    return prompts[lane]


def _lane(
    config: RunConfig,
    model: str,
    step: Step | None,
    template: PromptTemplate,
    system: str | None,
    schema: dict[str, Any] | None,
    params: Mapping[str, Any],
    temperature: float | None,
    max_tokens: int | None,
    validator: OutputValidator | None,
    *,
    key: str | None = None,
) -> Lane:
    return Lane(
        key=key or model,
        model=model,
        sent_model=provider_model(model),
        step=step,
        template=template,
        system=system,
        schema=schema,
        params=params,
        temperature=config.temperature if temperature is None else temperature,
        max_tokens=max_tokens or config.max_tokens,
        validator=validator,
        framing=request_framing(schema, params, config.reasoning_effort),
        answers=answers_per_call(params),
        timeout_s=config.timeout
        if config.timeout is not None
        else default_timeout(model.partition(":")[0], config.base_url_of(model)),
    )
