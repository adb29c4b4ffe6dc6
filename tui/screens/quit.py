"""The question asked when the user quits while a run is going.

The engine runs inside the app's own event loop, so quitting the app ends the
run either way; what the user chooses is how. Both ways out keep the run
resumable (the log holds every finished item; unfinished ones run again on
resume), so the dialog says what each costs rather than warning about loss. A
run's provider batch jobs are never cancelled by quitting: they go on at their
provider, and the dialog says so (resume fetches their results).

The screen only answers; the app acts on the answer (``Run.stop()`` or
``Run.abort()``, waits for the run to end, then exits).
"""

from __future__ import annotations

from typing import Final, Literal

from textual.widgets.button import ButtonVariant

from tui.screens.dialog import ChoiceDialog

QuitChoice = Literal["stop", "abort", "cancel"]
"""``stop``: send nothing more, let calls in flight finish and be logged, then quit.
``abort``: cancel calls in flight too (they run again on resume), then quit.
``cancel``: keep running; do not quit."""

CHOICES: Final[tuple[tuple[QuitChoice, str, str, ButtonVariant], ...]] = (
    ("stop", "Stop and keep it resumable", "s", "primary"),
    ("abort", "Quit now, abort calls in flight", "a", "error"),
    ("cancel", "Keep running", "k", "default"),
)
"""(answer, button label, key, button variant) in the order the buttons are shown."""


def _text(batch_jobs: int) -> str:
    if not batch_jobs:
        return (
            "Quitting ends the run. Finished items stay in its log, and the rest "
            "run when you resume it from History or with batchdeck resume."
        )
    jobs = "its batch job keeps" if batch_jobs == 1 else f"its {batch_jobs:,} batch jobs keep"
    return (
        f"Quitting ends the run here; {jobs} running at the provider. Finished items "
        "stay in its log; resuming it from History or with batchdeck resume fetches "
        "the jobs' results and runs the rest."
    )


class QuitScreen(ChoiceDialog[QuitChoice]):
    """Asks how to quit a live run; dismisses with a ``QuitChoice``."""

    PREFIX = "quit"
    CHOICES = CHOICES

    def __init__(self, batch_jobs: int = 0) -> None:
        """``batch_jobs``: the run's provider jobs not ended, which quitting leaves going."""
        super().__init__("A run is going", _text(batch_jobs))
