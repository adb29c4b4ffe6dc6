"""The switches the parts of an execution share: pause, stop, and the ways a run ends early.

The dispatcher, the workers and the log task each run as their own tasks and
never call into one another; what they must agree on lives here, behind a few
plain methods: whether to wait (paused), whether to send at all (halted), why
the run is ending (``stop_reason``: a cap, a failure, the user) and the one
place events leave the execution (``emit``). All of it is sync and used from
one event loop, so it needs no lock.
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
        self.send_deadline = math.inf
        """When the time limit ends sending (the event loop's clock); set by the dispatcher."""
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
        """Send nothing more; whoever waits at the pause gate goes on to find it halted, and
        waits before a send end."""
        self.halted = True
        self.stop_reason = self.stop_reason or "stopped"
        self._unpaused.set()
        for scope in self._waits:
            scope.cancel()

    @contextmanager
    def before_sending(self) -> Iterator[anyio.CancelScope]:
        """A scope for a wait before a call goes out (its rate-limit pace), cancelled when
        sending ends: at a stop, or at the time limit. Such a call is not in flight yet,
        so ending sending ends its wait, and the caller must not send it."""
        scope = anyio.CancelScope(deadline=self.send_deadline)
        if self.halted:
            scope.cancel()
        self._waits.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._waits.discard(scope)

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
