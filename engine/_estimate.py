"""The pre-flight: how many calls, tokens, dollars and minutes a run would take, with no call made.

Costs come as a range because output length is unknown before the call: the
low end pays for the prompts only, the high end for every call writing its full
``max_tokens`` (the same worst case the money cap reserves). Time is what the
tightest of workers, RPM and TPM allows at an assumed latency, said in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine._config import RunConfig, bare_model
from engine._items import Item
from engine._prices import FREE, PriceTable
from engine._template import PromptTemplate, default_template_for, render_item
from engine._tokens import estimate_tokens, input_token_bound
from engine.providers import PRESETS
from engine.readers import read_items

ASSUMED_OUTPUT_TOKENS_PER_S = 80.0
ASSUMED_FIRST_TOKEN_S = 0.6


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    model: str
    cost_low: float | None
    cost_high: float | None
    """None where the price is unknown; at the batch price for a model that goes batch."""
    batch: bool = False
    """The model goes through its provider's batch API."""
    other_low: float | None = None
    other_high: float | None = None
    """The same calls the other way (online for a batch model, batch for an online one)."""


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
        likely += estimate_tokens(prompt) + estimate_tokens(config.system or "")
        bound += input_token_bound(config.system, prompt)
    output_max = items * config.max_tokens
    table = PriceTable.load()
    per_model = []
    batch_models = config.batch_models
    for model in config.models:
        preset = PRESETS.get(model.partition(":")[0])
        free = preset is not None and preset.pricing == "free"
        online = FREE if free else table.lookup(bare_model(model))
        if online is None:
            per_model.append(ModelEstimate(model, None, None, batch=model in batch_models))
            continue
        by_mode = {
            mode: (price.worst_case(likely, 0), price.worst_case(bound, output_max))
            for mode, price in (("online", online), ("batch", online.batch()))
        }
        mode, other = ("batch", "online") if model in batch_models else ("online", "batch")
        per_model.append(
            ModelEstimate(
                model, *by_mode[mode], batch=mode == "batch",
                other_low=by_mode[other][0], other_high=by_mode[other][1],
            )
        )  # fmt: skip
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


def _latency_s(config: RunConfig) -> float:
    if all(model.startswith("simulate:") for model in config.models):
        return config.sim.latency_ms / 1000
    return ASSUMED_FIRST_TOKEN_S + config.max_tokens / 2 / ASSUMED_OUTPUT_TOKENS_PER_S
