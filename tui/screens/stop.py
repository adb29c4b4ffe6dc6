"""The question asked when the user stops a run that has provider batch jobs going.

Stopping sends nothing more; calls in flight finish. A batch job is another matter:
it runs at its provider, for hours maybe, and its requests are paid for as they
finish there. Leaving it running costs nothing more than was reserved, and a
resume fetches its results, so that is the default; cancelling it asks its provider
to stop it (what it finished is still fetched on resume, the rest stays pending and
goes out again). A run without open jobs stops at once, without asking.

The screen only answers; the run screen acts on the answer.
"""

from __future__ import annotations

from typing import Final, Literal

from textual.widgets.button import ButtonVariant

from tui.screens.dialog import ChoiceDialog

StopChoice = Literal["leave", "cancel_jobs", "keep"]
"""``leave``: stop, the jobs go on at their provider. ``cancel_jobs``: stop, and ask
their provider to cancel them. ``keep``: do not stop."""

CHOICES: Final[tuple[tuple[StopChoice, str, str, ButtonVariant], ...]] = (
    ("leave", "Stop, leave the jobs running at the provider", "l", "primary"),
    ("cancel_jobs", "Stop and cancel the jobs", "c", "error"),
    ("keep", "Keep running", "k", "default"),
)


class StopScreen(ChoiceDialog[StopChoice]):
    """Asks what becomes of a stopping run's batch jobs; dismisses with a ``StopChoice``."""

    PREFIX = "stop"
    CHOICES = CHOICES

    def __init__(self, batch_jobs: int) -> None:
        jobs = "1 batch job" if batch_jobs == 1 else f"{batch_jobs:,} batch jobs"
        super().__init__(
            "Stop the run",
            f"Nothing more is sent. The run has {jobs} at the provider: a resume fetches "
            "their results, or if cancelled what they finished (the rest goes out again).",
        )
