"""Short, fixed-width renderings of counts, money, durations and latencies.

Every panel and the item table print the same kinds of figures; formatting them
in one place keeps the screen consistent and keeps width arithmetic (the table
pads each cell to a fixed width) in step with what the text can contain.
"""

from __future__ import annotations

import math

_SI_STEPS: tuple[tuple[float, str], ...] = ((1e9, "G"), (1e6, "M"), (1e3, "k"))


def count(n: float) -> str:
    """``950``, ``12.3k``, ``4.56M``: at most five characters for any count below 1e12."""
    for step, suffix in _SI_STEPS:
        if abs(n) >= step:
            scaled = n / step
            return f"{scaled:.3g}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.1f}"


def money(usd: float) -> str:
    """Dollars with enough digits to tell a tenth of a cent from zero; NaN (a model with no
    price) is ``unknown``, never $0."""
    if math.isnan(usd):
        return "unknown"
    if usd == 0:
        return "$0"
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    if abs(usd) >= 1:
        return f"${usd:.2f}"
    if abs(usd) >= 0.01:
        return f"${usd:.3f}"
    return f"${usd:.4f}" if abs(usd) >= 0.0001 else f"${usd:.1e}"


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
