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

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from engine import keys
from engine._cache import ResponseCache, cache_path, request_key
from engine._config import RunConfig, bare_model, provider_model
from engine._items import Item
from engine._plan import call_request
from engine._prices import FREE, Price, PriceTable
from engine._reasoning import room_warning
from engine._results import Usage
from engine._schema import example_instance
from engine._template import PromptTemplate, default_template_for, render_item
from engine._tokens import (
    Family,
    answers_per_call,
    estimate_tokens,
    family_of,
    input_token_bound,
    request_framing,
)
from engine.providers import PRESETS, request_identities
from engine.providers.simulate import answer_text
from engine.readers import read_items

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


def estimate(config: RunConfig, *, expect_output: int | None = None) -> Estimate:
    """The estimate of ``config`` (checked first with ``preflight``); ``expect_output``:
    the output tokens a call is expected to write, when the user knows better."""
    items = invalid = 0
    template: PromptTemplate | None = PromptTemplate.parse(config.prompt) if config.prompt else None
    prices = _prices(config)
    tallies = {model: _Tally(family_of(model, local=_is_local(model))) for model in config.models}
    schema = config.output_schema
    schema_tokens = 0 if schema is None else estimate_tokens(orjson.dumps(schema).decode())
    item_cap_skips = 0
    framing = request_framing(schema, config.params, config.reasoning_effort)
    cached = _CachedItems(config)
    for entry in read_items(config.input, config.format):
        if not isinstance(entry, Item):
            invalid += 1
            continue
        if template is None:
            template = PromptTemplate.parse(default_template_for(list(entry.fields)))
        try:
            prompt = render_item(template, entry.fields)
        except ValueError:
            invalid += 1
            continue
        items += 1
        item_bound = input_token_bound(config.system, prompt) + framing
        hits = cached.hits(prompt)
        for model, tally in tallies.items():
            if model in hits:
                tally.cached += 1
                continue
            tally.bound += item_bound
            tally.calls += 1
            family = tally.family
            tally.input_tokens += family.input_tokens(config.system, prompt)
            tally.input_tokens += schema_tokens if family.counts_schema else 0
            tally.output_tokens += _output_of(model, prompt, config, expect_output)
            price = prices[model]
            if (
                config.max_item_cost is not None
                and price is not None
                and price.worst_case(item_bound, 1) > config.max_item_cost
            ):
                item_cap_skips += 1
    cached.close()
    answers = answers_per_call(config.params)
    output_max = items * config.max_tokens * answers
    per_model = tuple(
        _model_estimate(model, tally, prices[model], config, expect_output)
        for model, tally in tallies.items()
    )
    calls = items * len(config.models)
    latency = _latency_s(config)
    likely_in = sum(m.input_tokens for m in per_model)
    per_call_tokens = (likely_in / len(per_model) + output_max) / items if items else 0.0
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
        *_cap_warnings(config, _total(m.cost_low for m in per_model), item_cap_skips),
        *_key_warnings(config),
        *(
            w
            for model in config.models
            if (w := room_warning(model, config.reasoning_effort, config.max_tokens)) is not None
        ),
    ]
    return Estimate(
        items=items,
        invalid=invalid,
        calls=calls,
        input_tokens=likely_in,
        output_tokens=sum(m.output_tokens for m in per_model),
        output_tokens_max=output_max * models,
        models=per_model,
        seconds=calls / pace if pace != float("inf") else 0.0,
        latency_s=latency,
        bound_by=bound_by,
        warnings=tuple(warnings),
    )


def _is_local(model: str) -> bool:
    preset = PRESETS.get(model.partition(":")[0])
    return preset is not None and preset.pricing == "free"


def _prices(config: RunConfig) -> dict[str, Price | None]:
    table = PriceTable.load()
    return {
        model: FREE if _is_local(model) else table.lookup(bare_model(model))
        for model in config.models
    }


def _output_of(model: str, prompt: str, config: RunConfig, expect_output: int | None) -> int:
    """Likely output tokens of one call (see the module docstring)."""
    if model.startswith("simulate:"):
        text = answer_text(provider_model(model), prompt, config.output_schema)
        return min(config.max_tokens, estimate_tokens(text))
    return min(config.max_tokens, _expected_output(config, expect_output))


def _expected_output(config: RunConfig, expect_output: int | None) -> int:
    if expect_output is not None:
        return expect_output
    if config.output_schema is not None:
        return estimate_tokens(orjson.dumps(example_instance(config.output_schema)).decode())
    return max(1, config.max_tokens // ASSUMED_OUTPUT_SHARE)


def _output_counted(model: str, config: RunConfig, expect_output: int | None) -> str:
    if model.startswith("simulate:"):
        return "as simulate writes them"
    if expect_output is not None:
        return f"{expect_output:,} a call, as given (--expect-output)"
    if config.output_schema is not None:
        return "the size of the schema's example instance"
    return f"assumed 1/{ASSUMED_OUTPUT_SHARE} of --max-tokens a call (--expect-output N to say)"


def _model_estimate(
    model: str,
    tally: _Tally,
    price: Price | None,
    config: RunConfig,
    expect_output: int | None,
) -> ModelEstimate:
    batch = model in config.batch_models
    online = _costs(price, tally, config)
    at_batch = _costs(None if price is None else price.batch(), tally, config)
    likely, low, high = at_batch if batch else online
    other_likely, other_low, other_high = online if batch else at_batch
    return ModelEstimate(
        model=model,
        family=tally.family,
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        output_counted=_output_counted(model, config, expect_output),
        cost_likely=likely,
        cost_low=low,
        cost_high=high,
        batch=batch,
        other_likely=other_likely,
        other_low=other_low,
        other_high=other_high,
        cached=tally.cached,
    )


def _costs(
    price: Price | None, tally: _Tally, config: RunConfig
) -> tuple[float | None, float | None, float | None]:
    """Likely, lowest and highest cost of ``tally``'s calls at ``price`` (None: unknown)."""
    if price is None:
        return None, None, None
    output_max = tally.calls * config.max_tokens * answers_per_call(config.params)
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

    def hits(self, prompt: str) -> set[str]:
        """The models whose call with ``prompt`` the cache will answer."""
        store = self._store
        if store is None:
            return set()
        found = set()
        for model, identity in self._identities.items():
            request = call_request(self._config, model, prompt, self._config.max_tokens)
            if store.get(request_key(identity(request))) is not None:
                found.add(model)
        return found

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _cap_warnings(config: RunConfig, low: float | None, item_cap_skips: int) -> list[str]:
    out = []
    if config.max_cost is not None and low is not None and low > config.max_cost:
        share = config.max_cost / low
        out.append(
            f"--max-cost ${config.max_cost:g} is below the least this run can cost "
            f"(${low:.4f}: its prompts alone, with no answer): it stops at the cap after "
            f"about {share:.0%} of the calls"
        )
    if item_cap_skips:
        out.append(
            f"{item_cap_skips:,} call(s) will end skipped: the prompt alone may cost more than "
            f"--max-item-cost ${config.max_item_cost:g}"
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
