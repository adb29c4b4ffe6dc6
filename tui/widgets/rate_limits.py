"""Each model's rate limits as the engine sees them: limits, measured use, 429s, back-off.

Limits come from the provider's headers or the user's caps (the engine decides
which); "used" is what the run actually sent over the last minute. The back-off
column counts down from the last report on the model's clock, so it moves once
a second without new events.
"""

from __future__ import annotations

import math
from typing import ClassVar

from tui import _format
from tui.model import RateLimitState
from tui.widgets._panel import ModelTable


def _use(measured: float, limit: float | None) -> str:
    shown = _format.count(measured)
    return shown if limit is None else f"{shown}/{_format.count(limit)}"


def _cells(state: RateLimitState, now: float) -> tuple[str, ...]:
    update = state.update
    backoff = state.backoff_left(now)
    return (
        update.model,
        _use(update.rpm_measured, update.rpm_limit),
        _use(update.tpm_measured, update.tpm_limit),
        f"{update.throttled:,}",
        f"{math.ceil(backoff)}s" if backoff else "-",
    )


class RateLimits(ModelTable):
    """One row per model that has reported rate-limit state."""

    COLUMNS: ClassVar = (
        ("model", False),
        ("RPM used/limit", True),
        ("TPM used/limit", True),
        ("429s", True),
        ("back-off", True),
    )

    def model_rows(self) -> list[tuple[str, ...]]:
        now = self.model.now
        return [_cells(state, now) for state in self.model.rate_limits.values()]
