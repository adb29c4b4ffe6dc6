"""Each model's rate limits as the engine sees them: limits, measured use, 429s, back-off.

Limits come from the provider's headers or the user's caps (the engine decides
which); "used" is what the run actually sent over the last minute. The back-off
column counts down from the last report on the model's clock, so it moves once
a second without new events. A model with no report has a row too: a simulated
model has no limit (the engine paces it only when told ``--rpm``/``--tpm``), and
a real API's model has not answered yet.
"""

from __future__ import annotations

import math
from typing import ClassVar

from engine import DEFAULT_MODEL
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


SIMULATE = DEFAULT_MODEL.partition(":")[0]


class RateLimits(ModelTable):
    """One row per model that has reported rate-limit state."""

    COLUMNS: ClassVar = (
        ("model", False),
        ("RPM used/limit", True),
        ("TPM used/limit", True),
        ("429s", True),
        ("back-off", True),
    )

    DROP_FIRST: ClassVar = (2, 4, 3)

    def model_rows(self) -> list[tuple[str, ...]]:
        model = self.model
        now = model.now
        reported = model.rate_limits
        return [
            _cells(reported[name], now) if name in reported else _unreported(name)
            for name in dict.fromkeys([*model.models, *reported])
        ]


def _unreported(model: str) -> tuple[str, ...]:
    limit = "no limit" if model.partition(":")[0] == SIMULATE else "not known yet"
    return (model, limit, limit, "0", "-")
