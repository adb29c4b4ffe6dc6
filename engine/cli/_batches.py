"""Provider batch jobs from the command line: their one-line view, ``batches`` and ``cancel``.

A job's line says what a user waiting on it asks: which provider and job, its state,
requests succeeded / errored / still processing, how old it is and how long it has
before the provider expires it. ``batches`` lists the jobs of one run or of all runs,
asking the provider how the open ones stand (the log's last word when it cannot be
asked: no key, no network). ``cancel`` asks the provider to cancel a run's open jobs;
it writes nothing: the process driving the run (or the next ``resume``) sees them
cancelled, logs what they finished, and their other items stay pending.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace

import anyio

from engine._batch import job_view
from engine._errors import BatchdeckError, ProviderError
from engine._events import BatchJob
from engine._run import Run
from engine._runs import list_runs
from engine.cli._json import print_json
from engine.cli._progress import job_line


async def _live_views(run: Run) -> list[BatchJob]:
    """The run's jobs, the open ones as their provider says they stand now."""
    jobs = run.batch_jobs()
    views = [job_view(job) for job in jobs]
    if not any(job.open and job.job_id for job in jobs):
        return views
    try:
        async with run.batch_apis() as apis:
            for index, job in enumerate(jobs):
                api = apis.get(job.model)
                if not job.open or job.job_id is None or api is None:
                    continue
                try:
                    status = await api.status(job.job_id)
                except ProviderError:
                    continue
                views[index] = job_view(
                    replace(
                        job,
                        job_id=status.job_id,
                        state=status.state,
                        counts=(status.succeeded, status.errored, status.processing),
                        expires_at=status.expires_at,
                    )
                )
    except BatchdeckError:
        pass  # no key for the provider: the log's word stands
    return views


def cmd_batches(args: argparse.Namespace) -> int:
    if args.run:
        runs = [Run.open(args.run)]
    else:
        runs = [Run.open(r.run_dir) for r in list_runs() if r.problem is None]
    views = [(run.run_id, view) for run in runs for view in anyio.run(_live_views, run)]
    if args.json:
        print_json([{"run": r, "provider": job.provider, **asdict(job)} for r, job in views])
        return 0
    if not views:
        print("no batch jobs" + (f" in run {args.run}" if args.run else ""), file=sys.stderr)
        return 0
    print(f"{'RUN':<22} {'PROVIDER':<10} {'JOB':<28} {'STATE':<10} COUNTS")
    for run_id, job in views:
        print(f"{run_id:<22} {job_line(job)}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    return anyio.run(_cancel, run)


async def _cancel(run: Run) -> int:
    asked = await run.cancel_batch_jobs()
    if not asked:
        print(f"run {run.run_id} has no open batch jobs", file=sys.stderr)
        return 0
    for job, refused in asked:
        outcome = "cancel asked" if refused is None else f"not cancelled: {refused}"
        print(f"{job.model} {job.job_id}: {outcome}", file=sys.stderr)
    print(
        f"their finished results are fetched, and the rest stays pending, when the run goes on:"
        f" batchdeck resume {run.run_id}",
        file=sys.stderr,
    )
    return 1 if any(refused is not None for _, refused in asked) else 0
