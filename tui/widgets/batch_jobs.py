"""The run's provider batch jobs: one line each, as the engine last reported them.

Provider, job id, state, requests succeeded / errored / still processing, how old the
job is and how long before the provider expires it (nothing for one that ended). Age
and expiry count on the model's clock, so they move without new events. Hidden while
the run has no jobs. Jobs still going come first (a short panel shows only a few), and
a narrow panel keeps the job, its state and its counts.
"""

from __future__ import annotations

import time
from typing import ClassVar

from engine import BatchJob
from tui import _format
from tui.widgets._panel import ModelTable


def _cells(job: BatchJob, now: float) -> tuple[str, ...]:
    return (
        job.provider,
        job.job_id,
        job.state,
        f"{job.succeeded:,}/{job.errored:,}/{job.processing:,}",
        _format.duration(max(0.0, now - job.submitted_at)),
        "-"
        if job.expires_at is None or job.ended
        else _format.duration(max(0.0, job.expires_at - now)),
    )


class BatchJobs(ModelTable):
    """One row per provider batch job of the run."""

    COLUMNS: ClassVar = (
        ("provider", False),
        ("job", False),
        ("state", False),
        ("ok/err/left", True),
        ("age", True),
        ("expires in", True),
    )
    DROP_FIRST: ClassVar = (0, 5, 4)

    def model_rows(self) -> list[tuple[str, ...]]:
        now = time.time()
        self.display = bool(self.model.batch_jobs)
        jobs = sorted(self.model.batch_jobs.values(), key=lambda job: job.ended)
        return [_cells(job, now) for job in jobs]
