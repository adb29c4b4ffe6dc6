"""The one place the app drives the engine: the current run, its event buffer and its model.

The engine runs in the app's own event loop as ONE async worker (group
``engine``, exclusive), so pause, stop and the worker count are plain sync
calls on the ``Run`` handle from a key handler, and nothing crosses a thread.
Only file reads that block (a log's results, one result) go to a thread, each
inside an ``await``, so their answer comes back to the coroutine that asked.

A new run, a resumed run and a past run opened from History each get a fresh
``RunModel`` and ``EventBuffer``: the app builds a run screen around them. A
resumed or opened run first gets its log's results, as ``ItemFinished`` events,
so the table shows the items already done; the engine's ``RunStarted`` then
counts those same items again in ``already_done``, so ``_Relay`` zeroes it. A
retry reuses the model it was asked from, whose total already covers the
retried pairs, so its relay also drops the retry's own ``ItemsCounted``.

The engine publishes pause and resume itself (``RunPaused``/``RunResumed``); it
has no event for a stop that is draining (the caller's own action), so the
session tells the model that one.

Errors: ``Run.create`` / ``Run.open`` refusing a run come back as a
``BatchdeckError`` to the caller, which shows it; an engine worker that raises
one before anything is sent reaches the app's worker-error handler, which
calls ``failed`` to show it as the run's failure. Anything else is a bug and
crashes loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Iterable
from dataclasses import replace
from functools import partial
from typing import Any, Final, get_args

from textual.app import App
from textual.worker import Worker

from engine import (
    CostUpdated,
    Event,
    ItemFinished,
    ItemResult,
    ItemsCounted,
    Run,
    RunConfig,
    RunFailed,
    RunFinished,
    RunStarted,
    RunState,
    RunSummary,
    WorkersChanged,
    find_result,
    load_results,
)
from tui.model import EventBuffer, RunModel

ENGINE_GROUP: Final = "engine"
"""The worker group of the engine's one worker."""

_RUN_STATES: Final[frozenset[str]] = frozenset(get_args(RunState))


class _Relay:
    """An engine subscriber for a model that already holds the log's results."""

    __slots__ = ("_buffer", "_keep_total")

    def __init__(self, buffer: EventBuffer, *, keep_total: bool) -> None:
        self._buffer = buffer
        self._keep_total = keep_total

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            event = replace(event, already_done=0)
        elif isinstance(event, ItemsCounted) and self._keep_total:
            return
        self._buffer(event)


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
        relay = _Relay(self.events, keep_total=False)
        self._launch(partial(self._resume, run, relay, retry_failed=retry_failed))

    def retry(
        self, keys: Collection[tuple[str, str]], *, prompt_override: str | None = None
    ) -> None:
        """Run these ``(model, id)`` pairs of the current run again, into the current model."""
        assert self.run is not None and not self.running
        relay = _Relay(self.events, keep_total=True)
        self._launch(
            partial(self.run.execute, [relay], only=list(keys), prompt_override=prompt_override)
        )

    def open(self, summary: RunSummary) -> Worker[None]:
        """Show a past run without executing it: its results, then its last outcome."""
        run = Run.open(summary.run_dir)
        self._fresh(run)
        return self._app.run_worker(
            partial(self._open, run, summary), group="load", exclusive=True, exit_on_error=False
        )

    def failed(self, message: str) -> None:
        """The engine refused to start the run: show it as the run's failure."""
        self.events(RunFailed(message))

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
            self.model.state = "stopping"
            self.model.version += 1

    def abort(self) -> None:
        """Cancel calls in flight too; they run again on resume."""
        if self.run is not None and self.running:
            self.run.abort()
            self.model.state = "stopping"
            self.model.version += 1

    def add_workers(self, delta: int) -> int | None:
        """Change the worker count by ``delta`` (at least one); the new count, or None."""
        run = self.run
        if run is None or not self.running:
            return None
        count = max(1, run.config.workers + delta)
        run.set_workers(count)
        return count

    # -- reading the log -----------------------------------------------------------

    async def find_result(self, model: str, item_id: str) -> ItemResult | None:
        assert self.run is not None
        return await asyncio.to_thread(find_result, self.run, model, item_id)

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

    def _launch(self, work: Callable[[], Coroutine[Any, Any, RunFinished]]) -> None:
        assert self.run is not None
        self.events(WorkersChanged(self.run.config.workers))  # the engine reports changes only
        self.worker = self._app.run_worker(
            work, group=ENGINE_GROUP, exclusive=True, exit_on_error=False
        )

    async def _results(self, run: Run) -> list[ItemResult]:
        return await asyncio.to_thread(lambda: list(load_results(run)))

    def _feed(self, results: Iterable[ItemResult]) -> None:
        for result in results:
            self.events(ItemFinished(result))

    async def _resume(self, run: Run, relay: _Relay, *, retry_failed: bool) -> RunFinished:
        self._feed(await self._results(run))
        return await run.execute([relay], retry_failed=retry_failed)

    async def _open(self, run: Run, summary: RunSummary) -> None:
        results = await self._results(run)
        events = self.events
        events(RunStarted(run.run_id, str(run.run_dir), run.config.models, False, 0))
        if summary.total is not None:
            events(ItemsCounted(total=summary.total, invalid=0))
        events(CostUpdated(summary.cost_usd, 0.0, run.config.max_cost))
        self._feed(results)
        state = summary.state if summary.state in _RUN_STATES else "stopped"
        events(
            RunFinished(
                state=state,  # type: ignore[arg-type]
                ok=summary.ok,
                failed=summary.failed,
                skipped=summary.skipped,
                remaining=0 if summary.total is None else summary.total - summary.done,
                cost_usd=summary.cost_usd,
                input_tokens=sum(result.usage.input_tokens for result in results),
                output_tokens=sum(result.usage.output_tokens for result in results),
                elapsed_s=0.0,
            )
        )
