"""The TUI's plain model of a run: engine events in, state the widgets read out.

Nothing here imports Textual, so the model is tested (and timed) without an app,
and the screens stay thin: drain the buffer, ``apply_all``, repaint what moved.
"""

from tui.model._buffer import EventBuffer
from tui.model._run import ModelState, ModelStats, Notice, RateLimitState, RunModel, Severity
from tui.model._series import RateSeries
from tui.model._store import (
    PREVIEW_CHARS,
    STATUS_FILTERS,
    ItemStore,
    Row,
    RowStatus,
    StatusFilter,
)

__all__ = [
    "PREVIEW_CHARS",
    "STATUS_FILTERS",
    "EventBuffer",
    "ItemStore",
    "ModelState",
    "ModelStats",
    "Notice",
    "RateLimitState",
    "RateSeries",
    "Row",
    "RowStatus",
    "RunModel",
    "Severity",
    "StatusFilter",
]
