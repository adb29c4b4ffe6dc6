"""What a token costs, so caps can be enforced before a call is sent and the meter matches the bill.

Prices come from ``genai-prices`` (the pydantic team's dated data: thousands of
models, long-context tiers, cache read and write prices, batch prices), read from
the snapshot bundled with the installed package, never from the network at run
time (``engine._pricedata`` converts it, lazily: importing it costs a few hundred
milliseconds the CLI should not pay when no price is needed). A user file
``<config dir>/prices.json`` (``{"models": {"provider:model": {"input": ..,
"output": ..}}}``) overrides or adds models on top; its names are looked up as
given, then by the bare model name under any provider (so ``simulate:gpt-4o-mini``
costs what the real one does), then by the longest prefix.

A ``Price`` is a schedule, not two numbers: a call whose input (cache reads and
writes included) passes a tier's threshold pays that tier's rates on every token
(Gemini 2.5 Pro above 200k prompt tokens costs twice as much per input token);
cache writes cost more than plain input, cache reads less. ``worst_case`` takes
the dearest rate any input token of any reachable tier can have, so a cap that
reserves it stays hard on long prompts and on prompts written to the cache.

Every price is checked when the user file loads (a finite number from 0 to
``MAX_PRICE``), because the caps multiply it by token counts before any call:
a string, NaN or ``1e308`` in a user's file would otherwise surface mid-run as
an overflow, not as one line naming the file and the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine._errors import ConfigError
from engine._paths import config_dir
from engine._results import Usage

if TYPE_CHECKING:
    from engine._pricedata import PriceData

_PER = 1_000_000
MAX_PRICE = 1_000_000.0
"""USD per million tokens: far above any model's price, and small enough that a call's
worst case stays a finite number of cents."""
_OPTIONAL_FIELDS = ("cached_input", "cache_write", "batch_input", "batch_output")
_PRICE_FIELDS = ("input", "output", *_OPTIONAL_FIELDS)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens: the base rates, the tiers above them, the batch prices."""

    input: float
    output: float
    cached_input: float | None = None
    """A cache read (None: billed as plain input)."""
    cache_write: float | None = None
    """A token written to the prompt cache (None: billed as plain input)."""
    tiers: tuple[tuple[int, Price], ...] = ()
    """``(above, rates)``, ascending: a call with more than ``above`` input tokens pays
    ``rates`` (a flat Price) on every one of its tokens."""
    batch_rates: Price | None = None
    """What the provider's batch API charges (None: no batch price is known)."""

    def at(self, input_tokens: int) -> Price:
        """The flat rates a call with ``input_tokens`` input tokens pays."""
        rates = self
        for above, tier in self.tiers:
            if input_tokens > above:
                rates = tier
        return rates

    def cost(self, usage: Usage) -> float:
        rates = self.at(usage.input_tokens)
        reads = min(usage.cached_tokens, usage.input_tokens)
        writes = min(usage.cache_write_tokens, usage.input_tokens - reads)
        plain = usage.input_tokens - reads - writes
        read_rate = rates.input if rates.cached_input is None else rates.cached_input
        write_rate = rates.input if rates.cache_write is None else rates.cache_write
        return (
            plain * rates.input
            + reads * read_rate
            + writes * write_rate
            + usage.output_tokens * rates.output
        ) / _PER

    def saved_by_cache(self, usage: Usage) -> float:
        """What the provider's prompt cache saved this call (negative when writing it cost
        more than it read back)."""
        return self.cost(replace(usage, cached_tokens=0, cache_write_tokens=0)) - self.cost(usage)

    def _reachable(self, input_tokens: int) -> list[Price]:
        """The rates a call with at most ``input_tokens`` input tokens may pay."""
        return [self, *(tier for above, tier in self.tiers if input_tokens > above)]

    def worst_case(self, input_tokens: int, output_tokens: int) -> float:
        """The most a call can cost with at most these tokens: every input token at the
        dearest input-side rate (a cache write costs more than plain input), every output
        token produced, in whichever reachable tier costs most."""
        if not self.tiers:  # most models: one schedule (the dispatcher asks once per item)
            return (input_tokens * self._dearest_input + output_tokens * self.output) / _PER
        return (
            max(
                input_tokens * rates._dearest_input + output_tokens * rates.output
                for rates in self._reachable(input_tokens)
            )
            / _PER
        )

    @property
    def _dearest_input(self) -> float:
        return max(self.input, self.cached_input or 0.0, self.cache_write or 0.0)

    def output_tokens_within(self, budget_usd: float, input_tokens: int) -> int:
        """The most output tokens that keep a call with ``input_tokens`` within ``budget_usd``
        (as ``worst_case`` counts it)."""
        most = 1 << 30
        for rates in self._reachable(input_tokens):
            left = budget_usd * _PER - input_tokens * rates._dearest_input
            if left < 0:
                return 0
            if rates.output > 0:
                most = min(most, int(left // rates.output))
        return most

    def batch(self) -> Price:
        """What the same tokens cost through the provider's batch API. A model without batch
        prices is charged its online ones: more than it will cost, never less. Cached input
        costs no more than batch input."""
        batch = self if self.batch_rates is None else self.batch_rates
        return _capped_reads(batch)

    def describe(self) -> str:
        """One line: base rates, cache rates, tiers, batch."""
        parts = [f"${self.input:g} in / ${self.output:g} out per Mtok"]
        if self.cached_input is not None:
            parts.append(f"cache read ${self.cached_input:g}")
        if self.cache_write is not None:
            parts.append(f"cache write ${self.cache_write:g}")
        for above, tier in self.tiers:
            parts.append(f"above {above:,} input tokens ${tier.input:g} / ${tier.output:g}")
        if self.batch_rates is not None:
            batch = self.batch_rates
            parts.append(f"batch ${batch.input:g} / ${batch.output:g}")
        return ", ".join(parts)


def _capped_reads(price: Price) -> Price:
    def cap(rates: Price) -> Price:
        if rates.cached_input is None or rates.cached_input <= rates.input:
            return rates
        return replace(rates, cached_input=rates.input)

    return replace(cap(price), tiers=tuple((above, cap(t)) for above, t in price.tiers))


FREE = Price(0.0, 0.0)


def user_prices_path() -> Path:
    return config_dir() / "prices.json"


def _parse(data: Any, where: str) -> dict[str, Price]:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f'{where}: expected {{"models": {{"provider:model": {{...}}}}}}')
    table: dict[str, Price] = {}
    for name, entry in data["models"].items():
        if not isinstance(entry, dict) or not set(entry) <= set(_PRICE_FIELDS):
            unknown = sorted(set(entry) - set(_PRICE_FIELDS)) if isinstance(entry, dict) else []
            raise ConfigError(
                f"{where}: model {name!r}: "
                + (f"unknown field {unknown[0]!r} " if unknown else "expected an object ")
                + f"(fields: {', '.join(_PRICE_FIELDS)}, in USD per million tokens)"
            )
        for field in _PRICE_FIELDS:
            value = entry.get(field)
            if not _is_price(value) and not (value is None and field in _OPTIONAL_FIELDS):
                raise ConfigError(
                    f"{where}: model {name!r}: {field} must be a number from 0 to "
                    f"{MAX_PRICE:,.0f} (USD per million tokens), not {value!r:.40}"
                )
        table[name] = _from_entry(entry)
    return table


def _from_entry(entry: dict[str, Any]) -> Price:
    price = Price(
        entry["input"], entry["output"], entry.get("cached_input"), entry.get("cache_write")
    )
    if entry.get("batch_input") is None and entry.get("batch_output") is None:
        return price
    batch = replace(
        price,
        input=entry.get("batch_input", price.input),
        output=entry.get("batch_output", price.output),
    )
    return replace(price, batch_rates=batch)


def _is_price(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_PRICE
    )


class PriceTable:
    """The user's prices over genai-prices' data, which is read only when a name needs it."""

    def __init__(self, user: dict[str, Price], user_file: Path | None = None) -> None:
        self.user = user
        """The user file's models, by name as written there."""
        self.user_file = user_file

    @classmethod
    def load(cls, user_file: Path | None = None) -> PriceTable:
        path = user_prices_path() if user_file is None else user_file
        if not path.is_file():
            return cls({})
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
        return cls(_parse(data, str(path)), path)

    @cached_property
    def data(self) -> PriceData:
        """genai-prices' bundled snapshot (a fetched one if ``batchdeck prices update`` saved
        one), converted: loaded on first use."""
        from engine._pricedata import PriceData

        return PriceData.load()

    @property
    def as_of(self) -> str:
        """Where the prices come from and how recent they are."""
        return self.data.as_of

    def lookup(self, model_spec: str) -> Price | None:
        found = self.lookup_user(model_spec)
        return found if found is not None else self.data.lookup(model_spec)

    def lookup_user(self, model_spec: str) -> Price | None:
        """The user file's price for ``model_spec`` (exact, bare name, longest prefix)."""
        if not self.user:
            return None
        if model_spec in self.user:
            return self.user[model_spec]
        bare = model_spec.partition(":")[2] or model_spec
        by_bare = {name.partition(":")[2]: price for name, price in self.user.items()}
        if bare in by_bare:
            return by_bare[bare]
        prefixes = [name for name in by_bare if bare.startswith(name + "-")]
        return by_bare[max(prefixes, key=len)] if prefixes else None

    def models_of(self, provider: str) -> list[str]:
        """``provider:model`` names the data prices for a batchdeck provider, current models
        first, then the user file's own for that provider."""
        listed = self.data.models_of(provider)
        own = [name for name in self.user if name.partition(":")[0] == provider]
        return [*own, *(name for name in listed if name not in self.user)]
