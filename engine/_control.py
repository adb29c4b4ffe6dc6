"""The switches the parts of an execution share: pause, stop, and the ways a run ends early.

The dispatcher, the workers and the log task each run as their own tasks and
never call into one another; what they must agree on lives here, behind a few
plain methods: whether to wait (paused), whether to send at all (halted), why
the run is ending (``stop_reason``: a cap, a failure, the user) and the one
place events leave the execution (``emit``). All of it is sync and used from
one event loop, so it needs no lock.

A worker's waits (between attempts, for a rate limit) go through ``waiting``:
a stop cuts them short at once, so the first Ctrl+C works even while a server
asked for an hour, and none outlasts the time limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio

from engine._events import CapKind, CapReached, Event, FinalState, RunFailed, Subscriber


class Control:
    def __init__(self, subscribers: Sequence[Subscriber], abort: Callable[[], None]) -> None:
        self._subscribers = list(subscribers)
        self._abort = abort
        self.paused = False
        self._unpaused = anyio.Event()
        self._unpaused.set()
        self.halted = False
        """Stopped by the user or a failure: items taken but not started stay unsent."""
        self.stop_reason: FinalState | None = None
        self.failure: str | None = None
        self.deadline = math.inf
        """When the time limit ends sending (``anyio.current_time()``), set by ``start_clock``."""
        self._time_limit: float | None = None
        self._waits: set[anyio.CancelScope] = set()

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)

    def pause(self) -> bool:
        """Hold new calls back; False if already paused."""
        if self.paused:
            return False
        self.paused = True
        self._unpaused = anyio.Event()
        return True

    def unpause(self) -> bool:
        """Let calls go again; False if not paused, or halted (a stop wins over a resume)."""
        if not self.paused or self.halted:
            return False
        self.paused = False
        self._unpaused.set()
        return True

    async def wait_unpaused(self) -> None:
        if self.paused:
            await self._unpaused.wait()

    def halt(self) -> None:
        """Send nothing more; whoever waits at the pause gate, between attempts or for a
        rate limit goes on to find it halted."""
        self.halted = True
        self.stop_reason = self.stop_reason or "stopped"
        self._unpaused.set()
        for scope in self._waits:
            scope.cancel()

    def start_clock(self, time_limit: float | None) -> None:
        """Start the time limit now (``deadline``)."""
        self._time_limit = time_limit
        if time_limit is not None:
            self.deadline = anyio.current_time() + time_limit

    def sending(self) -> bool:
        """Nothing stops a call from being sent now: not halted, not out of time."""
        return not self.halted and (
            self.deadline == math.inf or anyio.current_time() < self.deadline
        )

    def time_up(self) -> None:
        self.cap("time_limit", f"time limit of {self._time_limit:g}s reached")

    @contextmanager
    def waiting(self) -> Iterator[anyio.CancelScope]:
        """A worker's wait, cut short by a stop or by the time limit; when the returned
        scope's ``cancelled_caught`` is set afterwards, the item must stay unsent."""
        with anyio.CancelScope(deadline=self.deadline) as scope:
            if self.halted:
                scope.cancel()
            self._waits.add(scope)
            try:
                yield scope
            finally:
                self._waits.discard(scope)
        if scope.cancelled_caught and not self.halted:
            self.time_up()

    def cap(self, cap: CapKind, message: str) -> None:
        """A cap ends dispatching (the caller returns); calls in flight finish."""
        if self.stop_reason is None:
            self.stop_reason = "capped"
            self.emit(CapReached(cap, message))

    def fail(self, message: str) -> None:
        """The run cannot go on (a bad key, a broken log): stop all; the first reason wins."""
        if self.failure is None:
            self.failure = message
            self.stop_reason = "failed"
            self.emit(RunFailed(message))
            self._abort()
