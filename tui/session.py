"""The one place the app drives the engine: the current run, its event buffer and its model.

The engine runs in the app's own event loop as ONE async worker (group
``engine``, exclusive), so pause, stop and the worker count are plain sync
calls on the ``Run`` handle from a key handler, and nothing crosses a thread.
Only file reads that block (one result, a run's failures) go to a thread,
each inside an ``await``, so their answer comes back to the coroutine that
asked.

A new run, a resumed run and a past run opened from History each get a fresh
``RunModel`` and ``EventBuffer``: the app builds a run screen around them, and
the model folds what the engine publishes, nothing else. A run with models to compare
also gets a ``ComparisonModel``, which the run screen feeds the same events, so the
Compare screen opened on it has every result so far without reading the log. A past run is
``Run.replay``: its log read back as the events it published, a page at a
time. A resume asks the engine to replay the log before going on
(``execute(replay=True)``), so the table shows the items already done. A retry
reuses the model it was asked from, which already holds every pair of the run.

Errors: ``Run.create`` / ``Run.open`` refusing a run come back as a
``BatchdeckError`` to the caller, which shows it; an engine or replay worker
that raises one (a run refused before anything is sent, a damaged log) reaches
the app's worker-error handler, which calls ``failed`` to show it as the run's
failure. Anything else is a bug and
crashes loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from contextlib import suppress
from functools import partial
from typing import Any, Final

from textual.app import App
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from engine import (
    BatchdeckError,
    ItemResult,
    Run,
    RunBusy,
    RunConfig,
    RunFailed,
    RunFinished,
    RunSummary,
    find_results,
    load_results,
    split_lane,
)
from tui.model import ComparisonModel, EventBuffer, RunModel

ENGINE_GROUP: Final = "engine"
"""The worker group of the engine's one worker."""
REPLAY_GROUP: Final = "replay"
"""The worker group of a past run being read back: not a run that is going."""


class RunSession:
    """The current run and the model the run screen draws; every engine call goes through here."""

    def __init__(
        self,
        app: App[Any],
        *,
        model: RunModel | None = None,
        events: EventBuffer | None = None,
    ) -> None:
        self._app = app
        self.model = RunModel() if model is None else model
        self.events = EventBuffer() if events is None else events
        self.run: Run | None = None
        self.worker: Worker[Any] | None = None
        self.comparison: ComparisonModel | None = None
        """The current run's models compared, if it has several for a step (or a judge)."""

    # -- state ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The engine worker is going (a run is executing or about to)."""
        return self.worker is not None and not self.worker.is_finished

    @property
    def stopping(self) -> bool:
        return self.running and self.model.state == "stopping"

    # -- launching -----------------------------------------------------------------

    def start(self, config: RunConfig) -> Run:
        """Create a run for ``config`` and execute it; ``BatchdeckError`` if it cannot be made."""
        run = Run.create(config)
        self._fresh(run)
        self._launch(partial(run.execute, [self.events]))
        return run

    def resume(self, run: Run, *, retry_failed: bool = False) -> None:
        """Go on with a stopped or interrupted run, its finished items shown first."""
        self._fresh(run)
        self._launch(partial(run.execute, [self.events], retry_failed=retry_failed, replay=True))

    def retry(
        self,
        keys: Collection[tuple[str, str]],
        *,
        prompt_override: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """Run these ``(model, id)`` pairs of the current run again, into the current model
        (``max_tokens``: a larger output limit, for truncated answers)."""
        assert self.run is not None and not self.running
        self._launch(
            partial(
                self.run.execute,
                [self.events],
                only=list(keys),
                prompt_override=prompt_override,
                max_tokens=max_tokens,
            )
        )

    def open(self, summary: RunSummary) -> Worker[RunFinished]:
        """Show a past run without executing it: its results, then its last outcome."""
        run = Run.open(summary.run_dir)
        self._fresh(run)
        holder = run.holder()
        if holder is not None and not holder.is_this_process:
            self.model.elsewhere = str(holder)
        return self._app.run_worker(
            partial(run.replay, [self.events]),
            group=REPLAY_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    def failed(self, error: BatchdeckError) -> None:
        """The engine refused to start the run: show it as the run's failure."""
        self.events(RunFailed(refusal(error)))

    # -- control -------------------------------------------------------------------

    def toggle_pause(self) -> None:
        run = self.run
        if run is None or not self.running or self.stopping:
            return
        if run.paused:
            run.resume()
        else:
            run.pause()

    def stop(self) -> None:
        """Send nothing more; calls in flight finish and are logged; resumable later."""
        if self.run is not None and self.running:
            self.run.stop()

    async def cancel_batch_jobs(self) -> list[tuple[str, str | None]]:
        """Once the run stopped, ask the providers to cancel its open batch jobs: per job
        id, None once asked, else why not. The log learns of it when the run next goes
        on (resume fetches what they finished; the rest is pending)."""
        run, worker = self.run, self.worker
        if run is None:
            return []
        if worker is not None and not worker.is_finished:
            with suppress(WorkerFailed, WorkerCancelled):  # the app reports its failure
                await worker.wait()
        try:
            asked = await run.cancel_batch_jobs()
        except BatchdeckError as exc:  # no key for the provider, a damaged log
            return [("the run's batch jobs", str(exc))]
        return [(job.job_id or job.token, refused) for job, refused in asked]

    def abort(self) -> None:
        """Cancel calls in flight too; they run again on resume."""
        if self.run is not None and self.running:
            self.run.abort()

    def add_workers(self, delta: int) -> int | None:
        """Change the worker count by ``delta`` (at least one); the new count, or None."""
        run = self.run
        if run is None or not self.running:
            return None
        count = max(1, run.config.workers + delta)
        run.set_workers(count)
        return count

    # -- reading the log -----------------------------------------------------------

    async def records(self, model: str, item_id: str) -> list[ItemResult]:
        """Every result record of one pair, oldest first (one per execution that ran it)."""
        assert self.run is not None
        return await asyncio.to_thread(find_results, self.run, model, item_id)

    async def earlier_records(self, lane: str, item_id: str) -> dict[str, list[ItemResult]]:
        """For a lane of a pipeline: every record of the item's lanes of the steps before
        its own (what its prompt read), by lane; nothing for a run without steps."""
        assert self.run is not None
        run, lanes, step = self.run, self.model.models, split_lane(lane)[0]
        if not step or lane not in lanes:
            return {}
        before = [other for other in lanes[: lanes.index(lane)] if split_lane(other)[0] != step]
        return await asyncio.to_thread(
            lambda: {other: find_results(run, other, item_id) for other in before}
        )

    async def failures(self) -> list[ItemResult]:
        """The run's failed and skipped results (the latest record of each pair)."""
        assert self.run is not None
        run = self.run
        return await asyncio.to_thread(
            lambda: [result for result in load_results(run) if result.status != "ok"]
        )

    # -- internals -----------------------------------------------------------------

    def _fresh(self, run: Run) -> None:
        self.run = run
        self.model = RunModel()
        self.events = EventBuffer()
        comparison = ComparisonModel(run.config)
        self.comparison = comparison if comparison.compared else None

    def _launch(self, work: Callable[[], Coroutine[Any, Any, RunFinished]]) -> None:
        self.worker = self._app.run_worker(
            work, group=ENGINE_GROUP, exclusive=True, exit_on_error=False
        )


def refusal(error: BatchdeckError) -> str:
    """The engine's refusal in the app's words: a run another process holds is named with
    its holder and what to do here (the engine's own sentence speaks of CLI flags)."""
    if isinstance(error, RunBusy) and error.holder is not None:
        return (
            f"This run is being run by {error.holder}: it cannot go on here until that ends. "
            "Open it from History (h) to watch its log, and resume it there (r) once it ended."
        )
    return str(error)
