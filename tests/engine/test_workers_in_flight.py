"""``+``/``-`` (``Run.set_workers``) move the calls in flight, counted where they land: on
the fake server, over real HTTP through the run's own provider and connection pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from engine._run import Run
from tests.engine.scripted import items, make_run
from tests.fakeserver.fixtures import serve_in_process

pytestmark = pytest.mark.anyio

KEY = "sk-workers-test-0123456789"
LATENCY_MS = 400
FOLLOW_S = 1.0
"""How soon the calls in flight must follow a new worker count."""


class Gauge:
    """The server's requests in flight, and a way to wait until they satisfy a condition."""

    def __init__(self) -> None:
        self.value = 0
        self.peak = 0
        self.changes = 0
        self._waiting: list[tuple[Callable[[int], bool], anyio.Event]] = []

    def __call__(self, in_flight: int) -> None:
        self.value, self.peak, self.changes = in_flight, max(self.peak, in_flight), self.changes + 1
        for condition, event in self._waiting:
            if condition(in_flight):
                event.set()

    async def until(self, condition: Callable[[int], bool], within_s: float) -> None:
        event = anyio.Event()
        if condition(self.value):
            return
        self._waiting.append((condition, event))
        try:
            with anyio.fail_after(within_s):
                await event.wait()
        finally:
            self._waiting.remove((condition, event))


async def test_calls_in_flight_follow_the_worker_count_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    gauge = Gauge()
    async with serve_in_process(api_key=KEY, latency_ms=LATENCY_MS) as server:
        run: Run = make_run(
            tmp_path,
            items(5000),
            models=("openai:gpt-4o-mini",),
            base_url=server.openai_base_url,
            workers=2,
        )
        with server.watch_in_flight(gauge), anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run.execute)
                await gauge.until(lambda n: n == 2, within_s=10)

                run.set_workers(16)
                await gauge.until(lambda n: n == 16, within_s=FOLLOW_S)

                run.set_workers(2)
                await gauge.until(lambda n: n <= 2, within_s=FOLLOW_S)
                # Over the next eight changes of the gauge (two rounds of calls) no third
                # call starts: the lowered count holds, not just passes through 2.
                gauge.peak, seen = gauge.value, gauge.changes
                await gauge.until(lambda n: gauge.changes >= seen + 8, within_s=5 * FOLLOW_S)
                assert gauge.peak <= 2
                run.abort()
