"""``batchdeck prices [MODEL|PROVIDER]`` and ``batchdeck prices update``.

What a model costs and where that figure comes from (the user's file, or
genai-prices' data and how recent it is), so a user can check the meter's
prices before a run. ``update`` is the one place batchdeck fetches prices:
genai-prices' published data, saved beside the user's config and used from then
on (delete the file to go back to the bundled snapshot); nothing else reaches
the network for prices.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

from engine._atomic import write_atomic
from engine._errors import ConfigError
from engine._pricedata import SOURCES, saved_path
from engine._prices import PriceTable
from engine.providers import is_free

LISTED = ("openai", "anthropic", "gemini")
"""The providers ``batchdeck prices`` lists without an argument (name another to see its)."""
UPDATE = "update"
URL_ENV = "BATCHDECK_PRICES_URL"
"""Where ``prices update`` fetches from (default: genai-prices' own published data)."""


def add_prices_parser(commands: argparse._SubParsersAction[Any]) -> None:
    prices = commands.add_parser(
        "prices",
        help="what a model costs, and how recent the price data is",
        description="Show a model's prices (or a provider's models), and where they come "
        "from. `batchdeck prices update` fetches genai-prices' latest data.",
    )
    prices.add_argument(
        "model", nargs="?", metavar="MODEL", help="provider:model, a provider, or `update`"
    )


def cmd_prices(args: argparse.Namespace) -> int:
    if args.model == UPDATE:
        return _update()
    table = PriceTable.load()
    print(f"prices: {table.as_of}" + (f"; yours: {table.user_file}" if table.user_file else ""))
    spec = args.model
    if spec is None or ":" not in spec:
        providers = LISTED if spec is None else (spec,)
        if spec is not None and spec not in SOURCES:
            raise ConfigError(f"no price data lists {spec}'s models: name one as {spec}:MODEL")
        for provider in providers:
            for name in table.models_of(provider):
                _show(table, name)
        return 0
    if is_free(spec.partition(":")[0]):
        print(f"{spec}: free (a local server)")
        return 0
    return 0 if _show(table, spec) else 1


def _show(table: PriceTable, spec: str) -> bool:
    price = table.lookup(spec)
    if price is None:
        print(
            f"{spec}: unpriced (the price data does not know it; a cost cap refuses to run it "
            f'until it is added under "models" in {table.user_file or "prices.json"})'
        )
        return False
    own = " (your prices.json)" if table.lookup_user(spec) is not None else ""
    print(f"{spec}: {price.describe()}{own}")
    return True


def _update() -> int:
    from genai_prices.types import _providers_from_raw
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    url = os.environ.get(URL_ENV) or DEFAULT_UPDATE_URL
    try:
        response = httpx.get(url, timeout=30, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ConfigError(f"could not fetch the price data from {url}: {exc}") from None
    try:
        _providers_from_raw(response.json())
    except ValueError as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{url} did not answer with genai-prices data ({reason})") from None
    path = saved_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, response.content)
    print(f"saved the price data from {url} to {path}", file=sys.stderr)
    print(f"prices: {PriceTable.load().as_of}")
    return 0
