"""The CLI's live progress line says what a run has spent, and never $0 for what it cannot price."""

from __future__ import annotations

import io

from engine import CostUpdated, ItemFinished, ItemResult
from engine.cli._progress import Progress


def finished(model: str, *, unpriced: bool) -> ItemFinished:
    return ItemFinished(ItemResult(id="a", model=model, status="ok", line=1, fields={},
                                   cost_usd=0.0, unpriced=unpriced))  # fmt: skip


def test_the_live_line_shows_an_unpriced_models_cost_as_unknown() -> None:
    progress = Progress(io.StringIO(), live=True)
    progress(finished("openai-compatible:local", unpriced=True))
    assert "unknown" in progress.line() and "$0.0000" not in progress.line()
    progress(CostUpdated(spent_usd=0.25, reserved_usd=0.0, cap_usd=None))
    assert "$0.2500 + unknown" in progress.line()


def test_the_live_line_shows_dollars_when_every_model_is_priced() -> None:
    progress = Progress(io.StringIO(), live=True)
    progress(finished("simulate:gpt-4o-mini", unpriced=False))
    progress(CostUpdated(spent_usd=0.25, reserved_usd=0.0, cap_usd=None))
    assert "$0.2500" in progress.line() and "unknown" not in progress.line()
