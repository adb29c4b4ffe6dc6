"""An answer cut off at the output limit is ``truncated``: kept, paid for, never ``ok``, not
retried as it is, and retried with a larger limit when asked; the log keeps it apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine import log
from engine._errors import LogCorrupt
from engine._events import ItemFinished
from engine._results import ErrorInfo, ItemResult, Usage
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, execute, items, make_run

pytestmark = pytest.mark.anyio


def cut_below(limit: int) -> Callable[[CallRequest], CallResult]:
    """A model that needs ``limit`` output tokens: under that it is cut off."""

    def answer(request: CallRequest) -> CallResult:
        if request.max_tokens < limit:
            return CallResult("half an ans", Usage(10, request.max_tokens), finish_reason="length")
        return CallResult("a whole answer", Usage(10, 40), finish_reason="stop")

    return answer


async def test_a_cut_off_answer_is_truncated_kept_paid_and_not_retried(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(3), max_tokens=16)
    provider = ScriptedProvider(cut_below(100))
    finished, events = await execute(run, provider)
    assert len(provider.requests) == 3  # the same request would be cut off again
    assert (finished.state, finished.ok, finished.truncated) == ("finished", 0, 3)
    results = [e.result for e in events if isinstance(e, ItemFinished)]
    assert {r.status for r in results} == {"truncated"}
    first = results[0]
    assert first.output == "half an ans" and first.finish_reason == "length"
    assert first.usage.output_tokens == 16 and first.cost_usd > 0
    assert first.error is not None and first.error.kind == "truncated"
    assert "16 output tokens" in first.error.message
    state = log.scan(run.log_path)
    assert (state.ok, state.truncated, state.done) == (0, 3, 3)


async def test_retry_failed_with_a_larger_limit_answers_and_records_the_limit(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, items(2), max_tokens=16)
    provider = ScriptedProvider(cut_below(100))
    await execute(run, provider)
    finished, _ = await execute(run, provider, retry_failed=True, max_tokens=200)
    assert [r.max_tokens for r in provider.requests[2:]] == [200, 200]
    assert (finished.ok, finished.truncated) == (2, 0)
    results = list(log.iter_results(run.log_path))
    assert [(r.status, r.max_tokens) for r in results] == [("ok", 200), ("ok", 200)]
    assert run.config.max_tokens == 16  # the run's own setting did not change


def result(id: str, line: int, status: str, **more: object) -> ItemResult:
    return ItemResult(id=id, model="m:x", status=status, line=line, fields={}, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", ["line", "id"])
def test_the_scan_counts_truncated_apart_and_latest_wins(tmp_path: Path, index: str) -> None:
    path = tmp_path / "log.jsonl"
    writer = log.LogWriter.create(
        path, log.header_record("r", config="c", input=None), durability="flush"
    )
    records = [
        result("a", 1, "truncated"),
        result("b", 2, "ok"),
        result("c", 3, "truncated"),
        result("c", 3, "ok"),  # retried with a larger limit
        result("d", 4, "failed", error=ErrorInfo("timeout", "x")),
        result("d", 4, "truncated"),
    ]
    writer.write_group([log.encode(log.result_record(r)) for r in records])
    writer.close()
    state = log.scan(path, index=index)  # type: ignore[arg-type]
    assert (state.ok, state.truncated, state.failed, state.skipped) == (2, 2, 0, 0)
    assert state.status("m:x", "a", 1) == "truncated" and state.status("m:x", "c", 3) == "ok"


def test_new_result_fields_round_trip_and_an_old_record_reads_without_them() -> None:
    new = result(
        "a", 1, "truncated", usage=Usage(10, 20, 0, reasoning_tokens=12),
        finished_at=1_700_000_000.5, max_tokens=2048, latency_ms=500.0,
    )  # fmt: skip
    back = log.result_from_record(log.result_record(new))
    assert back == new and back.started_at == 1_700_000_000.0
    old = {"k": "result", "head": ["m:x", "a", 1, "ok", 0.0, 10, 20, 0]}
    read = log.result_from_record(old)
    assert (read.finished_at, read.max_tokens, read.usage.reasoning_tokens) == (None, None, 0)


@pytest.mark.parametrize(
    "extra",
    [{"reasoning": 30}, {"t": -1.0}, {"max_tokens": 0}, {"max_tokens": "8"}, {"reasoning": -1}],
)
def test_an_impossible_new_field_is_log_corrupt(extra: dict[str, object]) -> None:
    record = {"k": "result", "head": ["m:x", "a", 1, "ok", 0.0, 10, 20, 0], **extra}
    with pytest.raises(LogCorrupt):
        log.result_from_record(record)
