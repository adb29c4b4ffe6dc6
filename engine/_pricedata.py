"""genai-prices' data as batchdeck's ``Price`` schedules: lookups, listings, the data's date.

Kept apart from ``engine._prices`` because importing genai-prices' snapshot (a
1.6 MB Python module) takes a few hundred milliseconds: only a lookup the user
file does not answer, a model listing or ``batchdeck prices`` pays it.

The data is read from the package's bundled snapshot, or from the copy
``batchdeck prices update`` saved (``<config dir>/genai-prices.json``, the raw
data genai-prices publishes), which wins when present: nothing here touches the
network. Prices that depend on when a call is made (a price change on a date, an
off-peak discount by time of day) are taken as the dearest the next day can
bring, so a cap reserved at start stays hard through a long run.

genai-prices has no date field; ``as_of`` names the package version and the
newest date its remarks say prices were checked or verified on, which is how
recent its facts are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from engine._errors import ConfigError
from engine._paths import config_dir
from engine._prices import Price

SOURCES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "deepseek": "deepseek",
    "groq": "groq",
    "together": "together",
    "openrouter": "openrouter",
}
"""batchdeck's hosted presets and the genai-prices provider that prices them."""

SAVED_NAME = "genai-prices.json"
_BATCH = {"processing": "batch"}
_CHECKED = re.compile(r"(?:checked|verified|as of|updated)[^.;]{0,30}?\b(20\d\d)-(\d\d)-(\d\d)\b")
"""A remark that the data was checked on a date: how recent its facts are."""
_NOT_CHAT = re.compile(r"tts|whisper|image|embed|audio|realtime|transcribe|robotics|moderation")
"""Model names of speech, image and embedding models, which a text batch cannot call."""
_LOOKAHEAD = [timedelta(minutes=30 * step) for step in range(49)]
"""When a price depends on the time of the call: every half hour of the next day."""

# Price keys for text, most specific first: a model may price text apart from audio.
_INPUT = ("input_text_mtok", "input_mtok")
_OUTPUT = ("output_text_mtok", "output_mtok")
_REASONING = ("output_text_reasoning_mtok", "output_reasoning_mtok")
_CACHE_READ = ("cache_text_read_mtok", "cache_read_mtok")
_CACHE_WRITE = (  # batchdeck writes Anthropic's default, five-minute cache
    "cache_text_write_5m_mtok",
    "cache_write_5m_mtok",
    "cache_text_write_mtok",
    "cache_write_mtok",
)


def saved_path() -> Path:
    return config_dir() / SAVED_NAME


@dataclass(frozen=True, slots=True)
class PriceData:
    snapshot: Any
    """A genai-prices ``DataSnapshot``."""
    as_of: str

    @classmethod
    def load(cls) -> PriceData:
        """The data in use, read once per process (again when ``prices update`` saved anew)."""
        saved = saved_path()
        try:
            stamp: int | None = saved.stat().st_mtime_ns
        except OSError:
            stamp = None
        return _load(saved, stamp)

    @classmethod
    def read(cls, saved: Path, stamp: int | None) -> PriceData:
        from genai_prices import __version__
        from genai_prices.data_snapshot import DataSnapshot

        if stamp is not None:
            providers = _parse_saved(saved)
            source = f"genai-prices data fetched {_mtime_date(saved)}"
        else:
            from genai_prices.data import providers

            source = f"genai-prices {__version__}"
        newest = _newest_date(providers)
        snapshot = DataSnapshot(providers, from_auto_update=False)
        return cls(snapshot, f"{source}, facts up to {newest}" if newest else source)

    def _model(self, model_spec: str) -> Any | None:
        provider, _, bare = model_spec.partition(":")
        if not bare:
            provider, bare = "", model_spec
        try:
            _, model = self.snapshot.find_provider_model(bare, None, SOURCES.get(provider), None)
        except LookupError:
            return None
        return model

    def lookup(self, model_spec: str) -> Price | None:
        """The price of ``provider:model`` (any provider's for ``simulate:`` and names whose
        provider genai-prices does not list), or None when the data does not know it."""
        model = self._model(model_spec)
        return None if model is None else to_price(model, datetime.now(UTC))

    def models_of(self, provider: str) -> list[str]:
        """The priced chat models of a batchdeck provider: current ones first (not deprecated,
        priced for prompt caching as every model of the last years is; newest price, then
        highest name first), the rest after."""
        source = SOURCES.get(provider)
        found = next((p for p in self.snapshot.providers if p.id == source), None)
        if found is None:
            return []
        now = datetime.now(UTC)
        ranked = []
        for model in sorted(found.models, key=lambda m: m.id, reverse=True):
            family = found.model_match is None or found.model_match.is_match(model.id)
            price = to_price(model, now) if family and not _NOT_CHAT.search(model.id) else None
            if price is not None:
                old = bool(model.deprecated) or price.cached_input is None
                ranked.append((old, -_start_ordinal(model), model.id))
        return [f"{provider}:{model_id}" for *_, model_id in sorted(ranked, key=lambda r: r[:2])]


@lru_cache(maxsize=2)
def _load(saved: Path, stamp: int | None) -> PriceData:
    return PriceData.read(saved, stamp)


def to_price(model: Any, now: datetime) -> Price | None:
    """``model``'s (a genai-prices ``ModelInfo``) text-token prices: None without an input
    and an output price."""
    schedules = {id(p): p for p in (model.get_prices(now + ahead) for ahead in _LOOKAHEAD)}
    prices = [_rates(schedule) for schedule in schedules.values()]
    if any(price is None for price in prices):
        return None
    price = _dearest([p for p in prices if p is not None])
    batch = _rates(model.get_prices(now, _BATCH))
    if batch is not None and batch != price:
        price = replace(price, batch_rates=batch)
    return price


def _dearest(prices: list[Price]) -> Price:
    first = prices[0]
    if all(p == first for p in prices[1:]):
        return first
    return max(prices, key=lambda p: (p.worst_case(1_000_000, 1_000_000), p.input, p.output))


def _rates(model_price: Any) -> Price | None:
    fields = {
        name: _first(model_price, keys)
        for name, keys in (
            ("input", _INPUT),
            ("output", _OUTPUT),
            ("reasoning", _REASONING),
            ("cached_input", _CACHE_READ),
            ("cache_write", _CACHE_WRITE),
        )
    }
    if fields["input"] is None or fields["output"] is None:
        return None
    thresholds = sorted({tier.start for value in fields.values() for tier in _tiers(value)})

    def at(total_input: int) -> Price:
        rate = {name: _rate_at(value, total_input) for name, value in fields.items()}
        output = max(rate["output"] or 0.0, rate["reasoning"] or 0.0)  # reasoning is output
        return Price(rate["input"] or 0.0, output, rate["cached_input"], rate["cache_write"])

    base = at(0)
    return replace(base, tiers=tuple((start, at(start + 1)) for start in thresholds))


def _first(model_price: Any, keys: Iterable[str]) -> Any:
    return next((v for v in (getattr(model_price, k, None) for k in keys) if v is not None), None)


def _tiers(value: Any) -> list[Any]:
    return list(getattr(value, "tiers", None) or ())


def _rate_at(value: Any, total_input: int) -> float | None:
    """The rate a call with ``total_input`` input tokens pays (genai-prices' "cliff" tiers:
    past a tier's start, every token pays the tier's price)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    rate = value.base
    for tier in value.tiers:
        if total_input > tier.start:
            rate = tier.price
    return float(rate)


def _start_ordinal(model: Any) -> int:
    """When the model's newest price started (0: always): recent models rank first."""
    prices = model.prices if isinstance(model.prices, list) else []
    starts = [
        c.constraint.start_date.toordinal()
        for c in prices
        if isinstance(getattr(c.constraint, "start_date", None), date)
    ]
    return max(starts, default=0)


def _newest_date(providers: list[Any]) -> str | None:
    newest: date | None = None
    for provider in providers:
        for model in provider.models:
            for text in (model.price_comments or "", provider.price_comments or ""):
                for match in _CHECKED.finditer(text):
                    try:
                        found = date(*map(int, match.groups()))
                    except ValueError:
                        continue
                    newest = found if newest is None else max(newest, found)
    return None if newest is None else newest.isoformat()


def _parse_saved(path: Path) -> list[Any]:
    from genai_prices.types import _providers_from_raw

    try:
        return list(_providers_from_raw(orjson.loads(path.read_bytes())))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: saved price data cannot be read ({type(exc).__name__}); delete it to use "
            "the bundled prices, or run `batchdeck prices update` again"
        ) from None


def _mtime_date(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
