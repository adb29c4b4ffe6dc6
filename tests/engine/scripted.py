"""A provider whose every answer the test decides, and a helper to run the engine on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson

from engine._config import make_config
from engine._errors import ProviderError
from engine._events import Event, RunFinished
from engine._results import Usage
from engine._run import Run
from engine.providers._base import CallRequest, CallResult

Answer = CallResult | ProviderError


class ScriptedProvider:
    """Answers with ``script(request)``; can hold calls until the test releases them."""

    name = "scripted"

    def __init__(self, script: Callable[[CallRequest], Answer] | None = None) -> None:
        self.script = script or (lambda r: CallResult(f"echo {r.prompt}", Usage(10, 5)))
        self.requests: list[CallRequest] = []
        self.gate: anyio.Event | None = None
        self.in_flight = 0
        self.closed = False

    async def call(self, request: CallRequest) -> CallResult:
        self.requests.append(request)
        self.in_flight += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            await anyio.lowlevel.checkpoint()
            answer = self.script(request)
        finally:
            self.in_flight -= 1
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def batch_api(self) -> None:
        """No batch API: a scripted model goes online."""
        return None

    async def aclose(self) -> None:
        self.closed = True


def gated() -> ScriptedProvider:
    """A provider that holds every call until the test sets its ``gate``."""
    provider = ScriptedProvider()
    provider.gate = anyio.Event()
    return provider


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def items(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"item-{i}", "context": f"text number {i}", **extra} for i in range(n)]


def make_run(tmp_path: Path, rows: Sequence[dict[str, Any]], **config: Any) -> Run:
    source = write_jsonl(tmp_path / "input.jsonl", rows)
    settings: dict[str, Any] = {
        "input": str(source),
        "models": ("simulate:gpt-4o-mini",),
        "retry": {"retries": 2, "base_s": 0.0, "cap_s": 0.0},
        "sim": {"latency_ms": 0},
    }
    settings.update(config)
    return Run.create(make_config(**settings), tmp_path / "run")


@asynccontextmanager
async def in_background(
    run: Run, provider: ScriptedProvider, **options: Any
) -> AsyncIterator[list[tuple[RunFinished, list[Event]]]]:
    """Run ``run`` in a task while the block steers it; the outcome is in the list after."""
    outcome: list[tuple[RunFinished, list[Event]]] = []

    async def go() -> None:
        outcome.append(await execute(run, provider, **options))

    async with anyio.create_task_group() as tg:
        tg.start_soon(go)
        yield outcome


async def until(condition: Callable[[], bool]) -> None:
    """Let the engine's tasks run until ``condition`` holds (the test's timeout bounds it)."""
    while not condition():
        await anyio.wait_all_tasks_blocked()


async def execute(
    run: Run, provider: ScriptedProvider | None = None, **options: Any
) -> tuple[RunFinished, list[Event]]:
    events: list[Event] = []
    providers = None if provider is None else {m: provider for m in run.config.models}
    finished = await run.execute([events.append], providers=providers, **options)
    return finished, events
