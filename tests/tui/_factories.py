"""Hand-built engine events for the TUI tests, and a clock the test moves by hand."""

from __future__ import annotations

from engine._events import Event, ItemFinished, ItemRetrying, ItemStarted, LiveState, RunStarted
from engine._results import ErrorInfo, ItemResult, Status, Usage

MODEL = "openai:gpt-4o-mini"
OTHER_MODEL = "anthropic:claude-3-5-haiku"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_started(
    *models: str, resumed: bool = False, already_done: int = 0, state: LiveState = "running"
) -> RunStarted:
    return RunStarted(
        run_id="20261122-150000-demo",
        run_dir="/runs/20261122-150000-demo",
        models=models or (MODEL,),
        resumed=resumed,
        already_done=already_done,
        state=state,
    )


def started(id: str, model: str = MODEL, attempt: int = 1) -> ItemStarted:
    return ItemStarted(id=id, model=model, attempt=attempt)


def retrying(
    id: str,
    model: str = MODEL,
    *,
    attempt: int = 1,
    kind: str = "rate_limited",
    delay_s: float = 2.0,
) -> ItemRetrying:
    error = ErrorInfo(kind, f"{kind} on attempt {attempt}")  # type: ignore[arg-type]
    return ItemRetrying(id=id, model=model, attempt=attempt, error=error, delay_s=delay_s)


def finished(
    id: str,
    model: str = MODEL,
    *,
    status: Status = "ok",
    output: str | None = None,
    kind: str | None = None,
    message: str = "it went wrong",
    cost: float = 0.001,
    tokens: tuple[int, int] = (100, 20),
    latency_ms: float = 500.0,
    attempts: int = 1,
) -> ItemFinished:
    error = None if kind is None else ErrorInfo(kind, message)  # type: ignore[arg-type]
    if status == "ok" and output is None:
        output = f"answer for {id}"
    return ItemFinished(
        ItemResult(
            id=id,
            model=model,
            status=status,
            line=1,
            fields={"text": id},
            output=output,
            usage=Usage(*tokens),
            cost_usd=cost,
            latency_ms=latency_ms,
            attempts=attempts,
            error=error,
        )
    )


def done_items(count: int, *, model: str = MODEL, fail_every: int = 0) -> list[Event]:
    """Start and finish ``count`` items; every ``fail_every``-th one fails with a timeout."""
    events: list[Event] = []
    for n in range(count):
        id = f"item-{n:05d}"
        events.append(started(id, model))
        if fail_every and n % fail_every == 0:
            events.append(finished(id, model, status="failed", kind="timeout", cost=0.0))
        else:
            events.append(finished(id, model))
    return events
