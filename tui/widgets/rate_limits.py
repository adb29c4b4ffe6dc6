"""Each model's rate limits as the engine sees them: limits, measured use, 429s, back-off.

Limits come from the provider's headers or the user's caps (the engine decides
which); "measured" is what the run actually sent over the last minute. The
back-off column counts down from the last report on the model's clock, so it
moves once a second without new events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text

from tui import _format
from tui.model import RateLimitState
from tui.widgets._panel import Cell, ModelTable


def _use(measured: float, limit: float | None) -> Text:
    shown = _format.count(measured)
    return Text(shown if limit is None else f"{shown}/{_format.count(limit)}", justify="right")


def _cells(state: RateLimitState, now: float) -> tuple[Cell, ...]:
    update = state.update
    backoff = state.backoff_left(now)
    return (
        update.model,
        _use(update.rpm_measured, update.rpm_limit),
        _use(update.tpm_measured, update.tpm_limit),
        Text(f"{update.throttled:,}", justify="right"),
        Text(f"{math.ceil(backoff)}s" if backoff else "-", justify="right"),
    )


class RateLimits(ModelTable):
    """One row per model that has reported rate-limit state."""

    COLUMNS: ClassVar = (
        ("model", "model"),
        ("rpm", "RPM used/limit"),
        ("tpm", "TPM used/limit"),
        ("throttled", "429s"),
        ("backoff", "back-off"),
    )

    def model_rows(self) -> Mapping[str, tuple[Cell, ...]]:
        now = self.model.now
        return {name: _cells(state, now) for name, state in self.model.rate_limits.items()}
