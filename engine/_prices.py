"""The price table: what a token costs, so caps can be enforced before a call is sent.

The shipped table (``prices.json`` beside this module) is dated; a user file
``<config dir>/prices.json`` of the same shape overrides or adds models. Model
names are looked up as given (``openai:gpt-4o-mini``), then by the bare model
name under any provider (so ``simulate:gpt-4o-mini`` costs what the real one
does), then by the longest known prefix (``gpt-4o-mini-2024-07-18``).

Every price is checked when the table loads (a finite number from 0 to
``MAX_PRICE``), because the caps multiply it by token counts before any call:
a string, NaN or ``1e308`` in a user's file would otherwise surface mid-run as
an overflow, not as one line naming the file and the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from engine._errors import ConfigError
from engine._paths import config_dir
from engine._results import Usage

_PER = 1_000_000
MAX_PRICE = 1_000_000.0
"""USD per million tokens: far above any model's price, and small enough that a call's
worst case stays a finite number of cents."""
_OPTIONAL_FIELDS = ("cached_input", "batch_input", "batch_output")
_PRICE_FIELDS = ("input", "output", *_OPTIONAL_FIELDS)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_rate
            + usage.output_tokens * self.output
        ) / _PER

    def batch(self) -> Price:
        """What the same tokens cost through the provider's batch API. A model without batch
        prices is charged its online ones: more than it will cost, never less. Cached input
        costs no more than batch input."""
        batch_input = self.input if self.batch_input is None else self.batch_input
        cached = None if self.cached_input is None else min(self.cached_input, batch_input)
        output = self.output if self.batch_output is None else self.batch_output
        return Price(batch_input, output, cached)

    def worst_case(self, input_tokens: int, output_tokens: int) -> float:
        """The most a call can cost: no cache hit, every allowed output token produced."""
        return (input_tokens * self.input + output_tokens * self.output) / _PER

    def output_tokens_within(self, budget_usd: float, input_tokens: int) -> int:
        """The most output tokens that keep a call with ``input_tokens`` within ``budget_usd``."""
        left = budget_usd * _PER - input_tokens * self.input
        if left < 0:
            return 0
        if self.output <= 0:
            return 1 << 30
        return int(left // self.output)


FREE = Price(0.0, 0.0)


def user_prices_path() -> Path:
    return config_dir() / "prices.json"


def _parse(data: Any, where: str) -> tuple[str, dict[str, Price]]:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f'{where}: expected {{"models": {{"provider:model": {{...}}}}}}')
    table: dict[str, Price] = {}
    for name, entry in data["models"].items():
        try:
            table[name] = Price(**entry)
        except TypeError as exc:
            raise ConfigError(
                f"{where}: model {name!r}: {exc} (fields: {', '.join(_PRICE_FIELDS)}, "
                "in USD per million tokens)"
            ) from None
        for field in _PRICE_FIELDS:
            value = getattr(table[name], field)
            if not _is_price(value) and not (value is None and field in _OPTIONAL_FIELDS):
                raise ConfigError(
                    f"{where}: model {name!r}: {field} must be a number from 0 to "
                    f"{MAX_PRICE:,.0f} (USD per million tokens), not {value!r:.40}"
                )
    return str(data.get("as_of", "unknown")), table


def _is_price(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_PRICE
    )


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    models: dict[str, Price]

    @classmethod
    def load(cls, user_file: Path | None = None) -> PriceTable:
        shipped = resources.files("engine").joinpath("prices.json").read_bytes()
        as_of, models = _parse(orjson.loads(shipped), "engine/prices.json")
        path = user_prices_path() if user_file is None else user_file
        if path.is_file():
            try:
                data = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from None
            _, extra = _parse(data, str(path))
            models = {**models, **extra}
        return cls(as_of, models)

    def lookup(self, model_spec: str) -> Price | None:
        if model_spec in self.models:
            return self.models[model_spec]
        bare = model_spec.partition(":")[2] or model_spec
        by_bare = {name.partition(":")[2]: price for name, price in self.models.items()}
        if bare in by_bare:
            return by_bare[bare]
        prefixes = [name for name in by_bare if bare.startswith(name + "-")]
        return by_bare[max(prefixes, key=len)] if prefixes else None
