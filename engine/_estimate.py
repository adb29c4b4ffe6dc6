"""The pre-flight: how many calls, tokens, dollars and minutes a run would take, with no call made.

Costs come as a range because output length is unknown before the call: the
low end pays for the prompts only, the high end for every call writing its full
``max_tokens`` (the same worst case the money cap reserves). A call the response
cache will answer costs nothing and is left out of both. Time is what the
tightest of workers, RPM and TPM allows at an assumed latency, said in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine._cache import ResponseCache, cache_path, request_key
from engine._config import RunConfig
from engine._items import Item
from engine._plan import call_request
from engine._prices import FREE, PriceTable
from engine._template import PromptTemplate, default_template_for, render_item
from engine._tokens import estimate_tokens, input_token_bound
from engine.providers import PRESETS, request_identities
from engine.readers import read_items

ASSUMED_OUTPUT_TOKENS_PER_S = 80.0
ASSUMED_FIRST_TOKEN_S = 0.6


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    model: str
    cost_low: float | None
    cost_high: float | None
    """None where the price is unknown."""
    cached: int = 0
    """Items the response cache will answer, at no cost (left out of the costs)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    items: int
    invalid: int
    calls: int
    input_tokens: int
    """Likely input tokens over all calls (about four bytes a token)."""
    output_tokens_max: int
    models: tuple[ModelEstimate, ...]
    seconds: float
    latency_s: float
    """The per-call latency the time assumes."""
    bound_by: str
    """What limits the pace: workers, rpm or tpm."""

    @property
    def cached(self) -> int:
        """Calls the response cache will answer instead."""
        return sum(m.cached for m in self.models)

    @property
    def cost_low(self) -> float | None:
        lows = [m.cost_low for m in self.models]
        return None if None in lows else sum(v for v in lows if v is not None)

    @property
    def cost_high(self) -> float | None:
        highs = [m.cost_high for m in self.models]
        return None if None in highs else sum(v for v in highs if v is not None)


def estimate(config: RunConfig) -> Estimate:
    items = invalid = likely = bound = 0
    template: PromptTemplate | None = PromptTemplate.parse(config.prompt) if config.prompt else None
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
        item_likely = estimate_tokens(prompt) + estimate_tokens(config.system or "")
        item_bound = input_token_bound(config.system, prompt)
        likely += item_likely
        bound += item_bound
        cached.add(prompt, item_likely, item_bound)
    cached.close()
    output_max = items * config.max_tokens
    table = PriceTable.load()
    per_model = []
    for model in config.models:
        preset = PRESETS.get(model.partition(":")[0])
        price = FREE if preset is not None and preset.pricing == "free" else table.lookup(model)
        if price is None:
            per_model.append(ModelEstimate(model, None, None))
        else:
            free = cached.of(model)
            output = output_max - free.items * config.max_tokens
            per_model.append(
                ModelEstimate(
                    model,
                    price.worst_case(likely - free.likely, 0),
                    price.worst_case(bound - free.bound, output),
                    free.items,
                )
            )
    calls = items * len(config.models)
    latency = _latency_s(config)
    per_call_tokens = (likely + output_max) / items if items else 0.0
    models = len(config.models)
    # Calls per second overall: workers are shared by the models, rate limits are per model.
    paces = {"workers": config.workers / latency if latency > 0 else float("inf")}
    if config.rpm:
        paces["rpm"] = config.rpm / 60.0 * models
    if config.tpm and per_call_tokens:
        paces["tpm"] = config.tpm / 60.0 / per_call_tokens * models
    bound_by = min(paces, key=lambda name: paces[name])
    pace = paces[bound_by]
    seconds = calls / pace if pace != float("inf") else 0.0
    return Estimate(
        items=items,
        invalid=invalid,
        calls=calls,
        input_tokens=likely * len(config.models),
        output_tokens_max=output_max * len(config.models),
        models=tuple(per_model),
        seconds=seconds,
        latency_s=latency,
        bound_by=bound_by,
    )


@dataclass(slots=True)
class _Free:
    items: int = 0
    likely: int = 0
    bound: int = 0


class _CachedItems:
    """Which items the response cache holds an answer for, per model, and their tokens.

    Read only: with no cache file yet (or ``--no-cache``) nothing is cached and no file
    is made; a cache that cannot be read counts nothing (the run will say why)."""

    def __init__(self, config: RunConfig) -> None:
        self._config = config
        self._free = {model: _Free() for model in config.models}
        self._identities = request_identities({m: config.base_url_of(m) for m in config.models})
        self._store: ResponseCache | None = None
        if config.cache and self._identities and cache_path().exists():
            self._store = ResponseCache.open(config.cache_max_gb)

    def add(self, prompt: str, likely: int, bound: int) -> None:
        store = self._store
        if store is None:
            return
        for model, identity in self._identities.items():
            request = call_request(self._config, model, prompt, self._config.max_tokens)
            if store.get(request_key(identity(request))) is not None:
                free = self._free[model]
                free.items += 1
                free.likely += likely
                free.bound += bound

    def of(self, model: str) -> _Free:
        return self._free[model]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _latency_s(config: RunConfig) -> float:
    if all(model.startswith("simulate:") for model in config.models):
        return config.sim.latency_ms / 1000
    return ASSUMED_FIRST_TOKEN_S + config.max_tokens / 2 / ASSUMED_OUTPUT_TOKENS_PER_S
