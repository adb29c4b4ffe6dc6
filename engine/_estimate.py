"""The pre-flight: how many calls, tokens, dollars and minutes a run would take, with no call made.

A figure comes three ways, and the estimate says which it used:

- likely: input tokens as the model's family counts them (``engine._tokens.Family``:
  bytes a token, what the chat template adds), output tokens as ``simulate`` would
  write them (it makes its answers here, so they are counted exactly), as a schema's
  example instance takes, as the user said (``expect_output``), or else assumed a
  quarter of ``max_tokens``;
- low: the prompts alone, no answer;
- high: the worst case the money cap reserves (the prompt's bytes, the request's
  framing, every call writing its full ``max_tokens``).

A call the response cache will answer costs nothing and is left out of every
figure (``cached`` counts them). Time is what the tightest of workers, RPM and TPM
allows at an assumed latency.
The run's own checks come first (``Run.create``'s ``preflight``), so an estimate
refuses what ``run`` would; what would only hurt the run (a cap below its least
cost, a model without a key, a limit a reasoning model cannot answer within) is
said as a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import orjson

from engine import keys
from engine._budget import usd
from engine._cache import Answer as CachedAnswer
from engine._cache import ResponseCache, cache_path, request_key
from engine._config import RunConfig, bare_model, online_spec, provider_model
from engine._items import Item
from engine._lanes import Lane, graph_of, lanes_for
from engine._plan import call_request
from engine._prices import Price, PriceTable
from engine._reasoning import room_warning
from engine._results import Usage
from engine._run import online_price
from engine._schema import example_instance
from engine._steps import Answer, Graph, Step, prompt_bound, render_step
from engine._template import PromptTemplate, default_template_for, render_item
from engine._tokens import Family, estimate_tokens, family_of, input_token_bound
from engine.providers import is_free, request_identities
from engine.providers.simulate import answer_text
from engine.readers import read_items

if TYPE_CHECKING:
    from engine._calibration import Calibration, LaneUsage

ASSUMED_OUTPUT_TOKENS_PER_S = 80.0
ASSUMED_FIRST_TOKEN_S = 0.6
ASSUMED_OUTPUT_SHARE = 4
"""With nothing to go on, an answer is assumed to use 1/4 of ``max_tokens``."""


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    model: str
    family: Family
    input_tokens: int
    """Likely input tokens over all its calls."""
    output_tokens: int
    """Likely output tokens over all its calls."""
    output_counted: str
    """How ``output_tokens`` was counted, in a few words."""
    cost_likely: float | None
    cost_low: float | None
    cost_high: float | None
    """None where the price is unknown; at the batch price for a model that goes batch."""
    batch: bool = False
    """The model goes through its provider's batch API."""
    other_likely: float | None = None
    other_low: float | None = None
    other_high: float | None = None
    """The same calls the other way (online for a batch model, batch for an online one)."""
    cached: int = 0
    """Items the response cache will answer, at no cost (left out of the figures)."""
    calibrated: bool = False
    """Its tokens are scaled to what sampled calls of it used (``Calibration``)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    items: int
    invalid: int
    calls: int
    input_tokens: int
    """Likely input tokens over all calls."""
    output_tokens: int
    """Likely output tokens over all calls."""
    output_tokens_max: int
    models: tuple[ModelEstimate, ...]
    seconds: float
    latency_s: float
    """The per-call latency the time assumes."""
    bound_by: str
    """What limits the pace: workers, rpm or tpm."""
    warnings: tuple[str, ...] = ()
    calibrated_items: int = 0
    """Items of the sample the figures of ``calibrated`` models come from (0: none)."""
    calibrated_from: str | None = None
    """The run those items ran in."""

    @property
    def cached(self) -> int:
        """Calls the response cache will answer instead."""
        return sum(m.cached for m in self.models)

    @property
    def cost_low(self) -> float | None:
        return _total(m.cost_low for m in self.models)

    @property
    def cost_likely(self) -> float | None:
        return _total(m.cost_likely for m in self.models)

    @property
    def cost_high(self) -> float | None:
        return _total(m.cost_high for m in self.models)


def _total(values: Iterable[float | None]) -> float | None:
    figures = list(values)
    return None if None in figures else sum(f for f in figures if f is not None)


@dataclass(slots=True)
class _Tally:
    """One model's running counts over the items."""

    family: Family
    input_tokens: int = 0
    output_tokens: int = 0
    bound: int = 0
    """The cap's input bound over the calls that are not cached."""
    calls: int = 0
    """Calls the cache will not answer."""
    cached: int = 0


def estimate(
    config: RunConfig,
    *,
    expect_output: int | None = None,
    calibration: Calibration | None = None,
) -> Estimate:
    """The estimate of ``config`` (checked first with ``preflight``); ``expect_output``:
    the output tokens a call is expected to write, when the user knows better;
    ``calibration``: the tokens sampled calls used, which scale the figures of the lanes
    it measured (over ``expect_output``).

    Figures are per lane (a model, or a model of one step of a pipeline). A pipeline's
    later steps are estimated on the answers of the steps they read as this estimate
    counts them (``_Answers``: simulate's own, a cached answer, or text of the expected
    size); their worst case is the bound the cap reserves before an item starts."""
    items = invalid = 0
    template: PromptTemplate | None = PromptTemplate.parse(config.prompt) if config.prompt else None
    prices = _prices(config)
    graph = graph_of(config)
    lanes: dict[str, Lane] = {}
    tallies: dict[str, _Tally] = {}
    item_cap_skips = 0
    """Calls of a one-lane run whose prompt alone passes --max-item-cost."""
    item_cap_stops = 0
    """Items of a run with several lanes whose calls' prompts alone pass it together."""
    cached = _CachedItems(config)
    for entry in read_items(config.input, config.format):
        if not isinstance(entry, Item):
            invalid += 1
            continue
        if template is None:
            template = PromptTemplate.parse(default_template_for(list(entry.fields)))
        if not lanes:
            lanes = lanes_for(config, template)
            tallies = {
                key: _Tally(family_of(lane.model, local=_is_local(lane.model)))
                for key, lane in lanes.items()
            }
        try:
            item_calls = _calls_of(entry, lanes, graph, config, cached, expect_output)
        except ValueError:
            invalid += 1
            continue
        items += 1
        prompts_alone = 0.0
        for key, call in item_calls.items():
            tally, lane, price = tallies[key], lanes[key], prices[lanes[key].model]
            if call.cached:
                tally.cached += 1
                continue
            tally.bound += call.bound
            tally.calls += 1
            family = tally.family
            tally.input_tokens += family.input_tokens(lane.system, call.prompt)
            if lane.schema is not None and family.counts_schema:
                tally.input_tokens += estimate_tokens(orjson.dumps(lane.schema).decode())
            tally.output_tokens += call.output_tokens
            if config.max_item_cost is not None and price is not None:
                prompts_alone += price.worst_case(call.bound, 1)
                item_cap_skips += len(lanes) == 1 and prompts_alone > config.max_item_cost
        if config.max_item_cost is not None and len(lanes) > 1:
            item_cap_stops += prompts_alone > config.max_item_cost
    cached.close()
    sampled = {} if calibration is None else calibration.lanes
    per_model = tuple(
        _model_estimate(
            key, lanes[key], tally, prices[lanes[key].model], config, expect_output,
            sampled.get(key) or sampled.get(online_spec(key)),
        )
        for key, tally in tallies.items()
    )  # fmt: skip
    calibrated = calibration is not None and any(m.calibrated for m in per_model)
    output_max = sum(items * lane.max_tokens * lane.answers for lane in lanes.values())
    calls = items * len(lanes)
    latency = _latency_s(config)
    likely_in = sum(m.input_tokens for m in per_model)
    per_call_tokens = (likely_in + output_max) / calls if calls else 0.0
    models = len(config.models)
    # Calls per second overall: workers are shared by the models, rate limits are per model.
    paces = {"workers": config.workers / latency if latency > 0 else float("inf")}
    if config.rpm:
        paces["rpm"] = config.rpm / 60.0 * models
    if config.tpm and per_call_tokens:
        paces["tpm"] = config.tpm / 60.0 / per_call_tokens * models
    bound_by = min(paces, key=lambda name: paces[name])
    pace = paces[bound_by]
    warnings = [
        *_cap_warnings(
            config, _total(m.cost_low for m in per_model), item_cap_skips, item_cap_stops
        ),
        *_key_warnings(config),
        *(
            w
            for lane in lanes.values()
            if (w := room_warning(bare_model(lane.model), config.reasoning_effort, lane.max_tokens))
            is not None
        ),
    ]
    return Estimate(
        items=items,
        invalid=invalid,
        calls=calls,
        input_tokens=likely_in,
        output_tokens=sum(m.output_tokens for m in per_model),
        output_tokens_max=output_max,
        models=per_model,
        seconds=calls / pace if pace != float("inf") else 0.0,
        latency_s=latency,
        bound_by=bound_by,
        warnings=tuple(dict.fromkeys(warnings)),
        calibrated_items=calibration.items if calibration is not None and calibrated else 0,
        calibrated_from=calibration.source if calibration is not None and calibrated else None,
    )


@dataclass(frozen=True, slots=True)
class _Call:
    """One lane's call for one item, as the estimate counts it."""

    prompt: str
    bound: int
    """The input bound the cap reserves."""
    output_tokens: int
    cached: bool


def _calls_of(
    item: Item,
    lanes: Mapping[str, Lane],
    graph: Graph | None,
    config: RunConfig,
    cached: _CachedItems,
    expect_output: int | None,
) -> dict[str, _Call]:
    """Every lane's call for ``item``, by lane key; ValueError for an item that cannot run."""
    if graph is None:
        prompt = render_item(next(iter(lanes.values())).template, item.fields)
        return {
            key: _call(lane, prompt, _bound(lane, prompt), config, cached, expect_output)[0]
            for key, lane in lanes.items()
        }
    calls: dict[str, _Call] = {}
    answers: dict[str, Answer] = {}
    prompts: dict[str, str] = {}

    def template_of(step: Step) -> PromptTemplate:
        return lanes[step.lanes[0]].template

    for step in graph.steps:
        later = bool(step.depends)
        for key, prompt in render_step(step, graph, template_of, item.fields, answers,
                                       prompts).items():  # fmt: skip
            lane = lanes[key]
            bound = _bound(lane, prompt)
            if later:  # what the cap holds before the answers it reads are in
                bound = input_token_bound(lane.system) + lane.framing
                bound += prompt_bound(step, item.fields, graph, config.max_tokens, template_of)
            calls[key], answers[key] = _call(lane, prompt, bound, config, cached, expect_output)
    return calls


def _bound(lane: Lane, prompt: str) -> int:
    return input_token_bound(lane.system, prompt) + lane.framing


def _call(
    lane: Lane,
    prompt: str,
    bound: int,
    config: RunConfig,
    cached: _CachedItems,
    expect_output: int | None,
) -> tuple[_Call, Answer]:
    """A lane's call, and the answer a later step reads of it (the cache's, when it has
    one; simulate's own; else an example of the schema, or text of the expected size)."""
    hit = cached.answer(lane, prompt)
    if hit is not None:
        return _Call(prompt, bound, 0, True), Answer(hit.text, hit.parsed)
    if lane.model.startswith("simulate:"):
        text = answer_text(provider_model(lane.model), prompt, lane.schema)
        out = min(lane.max_tokens, estimate_tokens(text))
        parsed = None if lane.schema is None else orjson.loads(text)
        return _Call(prompt, bound, out, False), Answer(text, parsed)
    out = min(lane.max_tokens, _expected_output(lane, expect_output))
    parsed = None if lane.schema is None else example_instance(lane.schema)
    text = orjson.dumps(parsed).decode() if parsed is not None else "x" * (4 * out)
    return _Call(prompt, bound, out, False), Answer(text, parsed)


def _is_local(model: str) -> bool:
    return is_free(model.partition(":")[0])


def _prices(config: RunConfig) -> dict[str, Price | None]:
    table = PriceTable.load()
    return {model: online_price(table, model) for model in config.models}


def _expected_output(lane: Lane, expect_output: int | None) -> int:
    if expect_output is not None:
        return expect_output
    if lane.schema is not None:
        return estimate_tokens(orjson.dumps(example_instance(lane.schema)).decode())
    return max(1, lane.max_tokens // ASSUMED_OUTPUT_SHARE)


def _output_counted(lane: Lane, expect_output: int | None) -> str:
    if lane.model.startswith("simulate:"):
        return "as simulate writes them"
    if expect_output is not None:
        return f"{expect_output:,} a call, as given (--expect-output)"
    if lane.schema is not None:
        return "the size of the schema's example instance"
    return f"assumed 1/{ASSUMED_OUTPUT_SHARE} of --max-tokens a call (--expect-output N to say)"


def _model_estimate(
    key: str,
    lane: Lane,
    tally: _Tally,
    price: Price | None,
    config: RunConfig,
    expect_output: int | None,
    sampled: LaneUsage | None,
) -> ModelEstimate:
    counted = _output_counted(lane, expect_output)
    if sampled is not None and sampled.calls:
        tally = replace(
            tally,
            input_tokens=round(tally.input_tokens * sampled.input_ratio),
            output_tokens=min(
                round(tally.calls * sampled.output_per_call),
                tally.calls * lane.max_tokens * lane.answers,
            ),
        )
        counted = (
            f"{sampled.output_per_call:,.0f} a call, as {sampled.calls:,} sampled calls used "
            f"(input x{sampled.input_ratio:.2f} of the count, as they used)"
        )
    batch = lane.model in config.batch_models
    online = _costs(price, tally, lane)
    at_batch = _costs(None if price is None else price.batch(), tally, lane)
    likely, low, high = at_batch if batch else online
    other_likely, other_low, other_high = online if batch else at_batch
    return ModelEstimate(
        model=key,
        family=tally.family,
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        output_counted=counted,
        cost_likely=likely,
        cost_low=low,
        cost_high=high,
        cached=tally.cached,
        calibrated=sampled is not None and sampled.calls > 0,
        batch=batch,
        other_likely=other_likely,
        other_low=other_low,
        other_high=other_high,
    )


def _costs(
    price: Price | None, tally: _Tally, lane: Lane
) -> tuple[float | None, float | None, float | None]:
    """Likely, lowest and highest cost of ``tally``'s calls at ``price`` (None: unknown)."""
    if price is None:
        return None, None, None
    output_max = tally.calls * lane.max_tokens * lane.answers
    return (
        price.cost(Usage(tally.input_tokens, tally.output_tokens)),
        price.worst_case(tally.input_tokens, 0),
        price.worst_case(tally.bound, output_max),
    )


class _CachedItems:
    """Which prompts the response cache holds an answer for, per model.

    Read only: with no cache file yet (or ``--no-cache``) nothing is cached and no file
    is made; a cache that cannot be read counts nothing (the run will say why)."""

    def __init__(self, config: RunConfig) -> None:
        self._config = config
        self._identities = request_identities({m: config.base_url_of(m) for m in config.models})
        self._store: ResponseCache | None = None
        if config.cache and self._identities and cache_path().exists():
            self._store = ResponseCache.open(config.cache_max_gb)

    def answer(self, lane: Lane, prompt: str) -> CachedAnswer | None:
        """The cache's answer to ``lane``'s call with ``prompt``, if it holds one."""
        identity = self._identities.get(lane.model)
        if self._store is None or identity is None:
            return None
        request = call_request(self._config, lane, prompt, lane.max_tokens)
        return self._store.get(request_key(identity(request)))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _cap_warnings(
    config: RunConfig, low: float | None, item_cap_skips: int, item_cap_stops: int
) -> list[str]:
    out = []
    if config.max_cost is not None and low is not None and low > config.max_cost:
        share = config.max_cost / low
        out.append(
            f"--max-cost {usd(config.max_cost)} is below the least this run can cost "
            f"(${low:.4f}: its prompts alone, with no answer): it stops at the cap after "
            f"about {share:.0%} of the calls"
        )
    item_cap = config.max_item_cost
    if item_cap is not None and item_cap_skips:
        out.append(
            f"{item_cap_skips:,} call(s) will end skipped: the prompt alone may cost more than "
            f"--max-item-cost {usd(item_cap)}"
        )
    if item_cap is not None and item_cap_stops:
        out.append(
            f"{item_cap_stops:,} item(s) will stop before their last call: their calls' prompts "
            f"alone may cost more than --max-item-cost {usd(item_cap)} together"
        )
    return out


def _key_warnings(config: RunConfig) -> list[str]:
    providers = {model.partition(":")[0] for model in config.models}
    return [
        f"no API key for {status.provider}: `run` refuses to start without one "
        f"(batchdeck keys set {status.provider})"
        for status in keys.key_status()
        if status.provider in providers and status.required and not status.present
    ]


def _latency_s(config: RunConfig) -> float:
    if all(model.startswith("simulate:") for model in config.models):
        return config.sim.latency_ms / 1000
    return ASSUMED_FIRST_TOKEN_S + config.max_tokens / 2 / ASSUMED_OUTPUT_TOKENS_PER_S
