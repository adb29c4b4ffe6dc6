"""Per-model figures: counts, cost, tokens, prompt-cache reads and savings, mean latency."""

from __future__ import annotations

import math
from typing import ClassVar

from tui import _format
from tui.model import ModelStats
from tui.widgets._panel import ModelTable


def _cells(stats: ModelStats) -> tuple[str, ...]:
    latency = stats.mean_latency_ms
    counts = stats.counts
    return (
        stats.model,
        *(
            f"{n:,}"
            for n in (stats.done, counts["ok"], counts["failed"], counts["skipped"], stats.active)
        ),
        f"{_format.count(stats.input_tokens)}/{_format.count(stats.output_tokens)}",
        _format.money(math.nan if stats.unpriced else stats.cost_usd),
        "-" if latency is None else _format.latency(latency),
        _cached(stats),
    )


def _cached(stats: ModelStats) -> str:
    """Input tokens read from the provider's prompt cache, and what that saved."""
    if not stats.cached_tokens and not stats.cache_saved_usd:
        return "-"
    return f"{_format.count(stats.cached_tokens)}/{_format.money(stats.cache_saved_usd)}"


class ModelBreakdown(ModelTable):
    """One row per model of the run."""

    COLUMNS: ClassVar = (
        ("model", False),
        ("done", True),
        ("ok", True),
        ("failed", True),
        ("skipped", True),
        ("active", True),
        ("tokens in/out", True),
        ("cost", True),
        ("mean time", True),
        ("cached in/saved", True),
    )
    DROP_FIRST: ClassVar = (4, 1, 8, 6, 5, 3)
    """skipped, done, mean time, tokens, active, failed: model, ok and cost stay."""

    def model_rows(self) -> list[tuple[str, ...]]:
        return [_cells(stats) for stats in self.model.per_model.values()]
