"""Per-model figures: counts, cost, tokens and mean latency, one row per model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text

from tui import _format
from tui.model import ModelStats
from tui.widgets._panel import Cell, ModelTable


def _right(text: str) -> Text:
    return Text(text, justify="right")


def _cells(stats: ModelStats) -> tuple[Cell, ...]:
    latency = stats.mean_latency_ms
    counts = stats.counts
    return (
        stats.model,
        *(
            _right(f"{n:,}")
            for n in (stats.done, counts["ok"], counts["failed"], counts["skipped"], stats.active)
        ),
        _right(f"{_format.count(stats.input_tokens)}/{_format.count(stats.output_tokens)}"),
        _right(_format.money(stats.cost_usd)),
        _right("-" if latency is None else _format.latency(latency)),
    )


class ModelBreakdown(ModelTable):
    """One row per model of the run."""

    COLUMNS: ClassVar = (
        ("model", "model"),
        ("done", "done"),
        ("ok", "ok"),
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("active", "in flight"),
        ("tokens", "tokens in/out"),
        ("cost", "cost"),
        ("latency", "mean time"),
    )

    def model_rows(self) -> Mapping[str, tuple[Cell, ...]]:
        return {name: _cells(stats) for name, stats in self.model.per_model.items()}
