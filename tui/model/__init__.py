"""The TUI's plain model of a run: engine events in, state the widgets read out; and the
Setup form's logic: its fields, and the run its texts describe.

Nothing here imports Textual, so the model is tested (and timed) without an app,
and the screens stay thin: drain the buffer, ``apply_all``, repaint what moved.
"""

from tui.model._buffer import EventBuffer
from tui.model._compare import ComparisonModel
from tui.model._run import ModelState, ModelStats, Notice, RateLimitState, RunModel, Severity
from tui.model._series import RateSeries
from tui.model._setup import (
    FORM_FIELDS,
    PATH_FIELD,
    SCHEMA_FIELD,
    STEPS_FIELD,
    Form,
    FormField,
    FormProblem,
    ModelChoice,
    added_choices,
    default_models,
    estimate_text,
    initial_texts,
    mode_text,
    model_choices,
    read_form,
    split_modes,
    with_modes,
)
from tui.model._steps import (
    FIRST_STEP,
    JUDGE_STEP,
    StepCost,
    StepDraft,
    StepKind,
    draft_of,
    missing_fields,
    step_costs,
)
from tui.model._store import (
    FINISHED,
    PREVIEW_CHARS,
    STATUS_FILTERS,
    ItemStore,
    Row,
    RowStatus,
    SortKey,
    StatusFilter,
    StepProgress,
)
from tui.model._try import TryModel

__all__ = [
    "FINISHED",
    "FIRST_STEP",
    "JUDGE_STEP",
    "SCHEMA_FIELD",
    "STEPS_FIELD",
    "StepCost",
    "StepDraft",
    "StepKind",
    "draft_of",
    "missing_fields",
    "step_costs",
    "FORM_FIELDS",
    "PATH_FIELD",
    "PREVIEW_CHARS",
    "STATUS_FILTERS",
    "ComparisonModel",
    "TryModel",
    "EventBuffer",
    "Form",
    "FormField",
    "FormProblem",
    "ItemStore",
    "ModelChoice",
    "ModelState",
    "ModelStats",
    "Notice",
    "RateLimitState",
    "RateSeries",
    "Row",
    "RowStatus",
    "RunModel",
    "Severity",
    "SortKey",
    "StatusFilter",
    "StepProgress",
    "added_choices",
    "default_models",
    "estimate_text",
    "initial_texts",
    "mode_text",
    "model_choices",
    "read_form",
    "split_modes",
    "with_modes",
]
