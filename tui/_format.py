"""Short, fixed-width renderings of counts, money, durations and latencies.

Every panel and the item table print the same kinds of figures; formatting them
in one place keeps the screen consistent and keeps width arithmetic (the table
pads each cell to a fixed width) in step with what the text can contain.
"""

from __future__ import annotations

import math
from typing import Final

from engine import split_lane

_SI_STEPS: tuple[tuple[float, str], ...] = ((1e9, "G"), (1e6, "M"), (1e3, "k"))


def count(n: float) -> str:
    """``950``, ``12.3k``, ``4.56M``: at most five characters for any count below 1e12."""
    for step, suffix in _SI_STEPS:
        if abs(n) >= step:
            scaled = n / step
            return f"{scaled:.3g}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.1f}"


MONEY_SIGNIFICANT: Final = 2
"""Digits kept of an amount below a cent: ``$0.000021``, never ``$2.1e-05``."""
MONEY_DECIMALS: Final = 12
"""The engine counts money in pico-dollars: no amount has more decimals than this."""


def money(usd: float) -> str:
    """Dollars in fixed decimals that scale with the amount: ``$1,234``, ``$12.34``,
    ``$0.123``, ``$0.0012``, ``$0.000021`` (two significant digits below a cent); NaN (a
    model with no price) is ``unknown``, never $0."""
    if math.isnan(usd):
        return "unknown"
    if usd == 0:
        return "$0"
    size = abs(usd)
    if size >= 100:
        return f"${usd:,.0f}"
    if size >= 1:
        return f"${usd:.2f}"
    if size >= 0.01:
        return f"${usd:.3f}"
    decimals = min(MONEY_DECIMALS, MONEY_SIGNIFICANT - 1 - math.floor(math.log10(size)))
    return f"${usd:.{decimals}f}"


def fitting(width: int, *texts: str) -> str:
    """The first of ``texts`` (longest and clearest first) that fits in ``width`` cells, else
    the last: how a panel says the same thing in fewer cells rather than wrap a line."""
    for text in texts:
        if len(text) <= width:
            return text
    return texts[-1]


NAME_MIN: Final = 8
"""Cells a model's name keeps before its provider is cut too (``squeezed``)."""


def squeezed(spec: str, width: int) -> str:
    """``provider:model`` in ``width`` cells: whole when it fits, else cut in the middle of
    the name, keeping the provider and the name's end, where the versions that tell one
    model from the next are (``anthropic:cla…net-4-6``, ``anthropic:cla…pus-4-6``): cut at
    the end, five models would read the same. The provider is cut too only when the name
    would keep fewer than ``NAME_MIN`` cells."""
    if len(spec) <= width:
        return spec
    provider, colon, name = spec.partition(":")
    prefix = provider + colon
    if not colon or width - len(prefix) < NAME_MIN:
        return _cut_middle(spec, width)
    return prefix + _cut_middle(name, width - len(prefix))


def squeezed_lane(lane: str, width: int) -> str:
    """A lane (``step/provider:model``) in ``width`` cells: whole when it fits, else the
    step kept whole and the model without its provider (``classify/gpt-4o-mini``), then
    that model cut in the middle; a lane with no step is ``squeezed``."""
    step, model = split_lane(lane)
    if not step or len(lane) <= width:
        return squeezed(lane, width)
    short = f"{step}/{model.partition(':')[2] or model}"
    if len(short) <= width:
        return short
    room = width - len(step) - 1
    return (
        f"{step}/{_cut_middle(short[len(step) + 1 :], room)}"
        if room >= 4
        else _cut_middle(short, width)
    )


def _cut_middle(text: str, width: int) -> str:
    """``text`` in ``width`` cells, an ellipsis in place of its middle; a quarter of what
    is kept comes from the start, the rest from the end."""
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 4
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def latency(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return duration(ms / 1000)


def duration(seconds: float) -> str:
    """``0:07``, ``12:05``, ``3:04:59``: a clock, because people read it as one."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def percent(part: float, whole: float | None) -> str:
    if not whole:
        return "-"
    return f"{100 * part / whole:.1f}%"
