"""The engine end to end on real files and a real log, with providers the tests script."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from engine import log
from engine._config import make_config
from engine._errors import ConfigError, InputError, ProviderError
from engine._events import (
    CapReached,
    Event,
    ItemFinished,
    ItemRetrying,
    ItemStarted,
    RunFailed,
    RunPaused,
    RunResumed,
    WorkersChanged,
)
from engine._results import ItemResult, Usage
from engine._run import Run
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import (
    ScriptedProvider,
    execute,
    gated,
    in_background,
    items,
    make_run,
    until,
    write_jsonl,
)

pytestmark = pytest.mark.anyio


def finished_ids(events: list[Event]) -> list[str]:
    return [e.result.id for e in events if isinstance(e, ItemFinished)]


def append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def log_results(run: Run) -> dict[str, ItemResult]:
    return {r.id: r for r in log.iter_results(run.log_path)}


async def test_every_item_gets_one_logged_result(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(50))
    finished, events = await execute(run, ScriptedProvider())
    assert finished.state == "finished"
    assert (finished.ok, finished.failed, finished.skipped, finished.remaining) == (50, 0, 0, 0)
    assert sorted(finished_ids(events)) == sorted(f"item-{i}" for i in range(50))
    results = log_results(run)
    assert len(results) == 50
    assert results["item-7"].output == "echo text number 7"
    assert results["item-7"].fields["context"] == "text number 7"


async def test_retryable_errors_are_retried_and_others_are_not(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def script(request: CallRequest) -> CallResult | ProviderError:
        seen[request.prompt] = seen.get(request.prompt, 0) + 1
        if "number 1" in request.prompt and seen[request.prompt] == 1:
            return ProviderError("server_error", "boom", status=500)
        if "number 2" in request.prompt:
            return ProviderError("bad_request", "bad field", status=400)
        if "number 3" in request.prompt:
            return ProviderError("rate_limited", "slow down", status=429, retry_after=0.0)
        return CallResult("fine", Usage(3, 2))

    run = make_run(tmp_path, items(5))
    finished, events = await execute(run, ScriptedProvider(script))
    results = log_results(run)
    assert results["item-1"].status == "ok" and results["item-1"].attempts == 2
    assert results["item-1"].attempt_errors[0].kind == "server_error"
    assert results["item-2"].status == "failed" and results["item-2"].attempts == 1
    assert results["item-2"].error.kind == "bad_request"
    assert results["item-3"].status == "failed" and results["item-3"].attempts == 3
    assert results["item-3"].error.message == "slow down"
    assert sum(isinstance(e, ItemRetrying) for e in events) == 3
    assert (finished.ok, finished.failed) == (3, 2)


async def test_a_bad_key_stops_the_run_at_once(tmp_path: Path) -> None:
    provider = ScriptedProvider(lambda r: ProviderError("auth", "invalid x-api-key", status=401))
    run = make_run(tmp_path, items(500), workers=4)
    finished, events = await execute(run, provider)
    assert finished.state == "failed"
    assert len(provider.requests) <= 8
    failed = [e for e in events if isinstance(e, RunFailed)]
    assert len(failed) == 1 and "invalid x-api-key" in failed[0].message
    assert finished.remaining == 500  # nothing recorded: all of it runs once the key is fixed


async def test_invalid_input_fails_alone_and_the_rest_runs(tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    write_jsonl(source, items(3))
    source.write_bytes(source.read_bytes() + b"{not json\n" + b'{"id": "item-9", "context": "x"}\n')
    run = Run.create(make_config(input=str(source), retry={"retries": 0}), tmp_path / "run")
    finished, _ = await execute(run, ScriptedProvider())
    results = log_results(run)
    bad = [r for r in results.values() if r.status == "failed"]
    assert (
        len(bad) == 1 and bad[0].error.kind == "invalid_input" and "line 4" in bad[0].error.message
    )
    assert finished.ok == 4 and finished.state == "finished"


async def test_unknown_placeholder_refuses_before_the_run_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\{ticket\}"):
        make_run(tmp_path, items(3), prompt="Classify {ticket}")
    assert not (tmp_path / "run").exists()


async def test_pause_sends_nothing_new_until_resume(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(40), workers=4)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 4)
        run.pause()
        provider.gate.set()
        await until(lambda: provider.in_flight == 0)
        sent = len(provider.requests)
        await anyio.wait_all_tasks_blocked()
        assert len(provider.requests) == sent == 4
        run.resume()
    finished, events = outcome[0]
    assert finished.state == "finished" and finished.ok == 40
    assert sum(isinstance(e, ItemStarted) for e in events) == 40
    assert [type(e) for e in events if isinstance(e, RunPaused | RunResumed)] == [
        RunPaused,
        RunResumed,
    ]
    kinds = [r["k"] for r in log.read_records(run.log_path)]
    assert kinds.index("pause") < kinds.index("resume") < kinds.index("finish")


async def test_stop_drains_in_flight_and_resume_finishes(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(30), workers=3)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 3)
        run.stop()
        provider.gate.set()
    finished, _ = outcome[0]
    assert finished.state == "stopped"
    assert finished.ok == 3 and finished.remaining == 27
    again, _ = await execute(run, ScriptedProvider())
    assert again.state == "finished" and again.ok == 30
    assert len(log_results(run)) == 30


async def test_abort_cancels_in_flight_and_they_run_again(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(10), workers=2)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 2)
        run.abort()
    finished, _ = outcome[0]
    assert finished.state == "stopped" and finished.ok == 0 and finished.remaining == 10
    again, _ = await execute(run, ScriptedProvider())
    assert again.ok == 10 and len(log_results(run)) == 10


async def test_max_items_stops_with_the_rest_resumable(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(20), max_items=5)
    finished, events = await execute(run, ScriptedProvider())
    assert finished.state == "capped" and finished.ok == 5 and finished.remaining == 15
    assert [e.cap for e in events if isinstance(e, CapReached)] == ["max_items"]


async def test_set_workers_changes_calls_in_flight(tmp_path: Path) -> None:
    provider = gated()
    run = make_run(tmp_path, items(40), workers=2)
    async with in_background(run, provider) as outcome:
        await until(lambda: provider.in_flight == 2)
        run.set_workers(6)
        await until(lambda: provider.in_flight == 6)
        await anyio.wait_all_tasks_blocked()
        assert provider.in_flight == 6
        provider.gate.set()
    finished, events = outcome[0]
    assert finished.ok == 40
    assert [e.workers for e in events if isinstance(e, WorkersChanged)] == [2, 6]


async def test_resume_refuses_a_changed_input_unless_forced(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(5), max_items=2)
    await execute(run, ScriptedProvider())
    append_bytes(Path(run.config.input), b'{"id": "new", "context": "late"}\n')
    with pytest.raises(InputError, match="changed"):
        await execute(run, ScriptedProvider())
    unlimited = run.with_config(run.config.model_copy(update={"max_items": None}))
    finished, _ = await execute(unlimited, ScriptedProvider(), force=True)
    assert finished.ok == 6


async def test_retry_failed_reruns_only_the_failed(tmp_path: Path) -> None:
    failing = ScriptedProvider(
        lambda r: (
            ProviderError("bad_request", "no")
            if "number 4" in r.prompt
            else CallResult("y", Usage(1, 1))
        )
    )
    run = make_run(tmp_path, items(8))
    first, _ = await execute(run, failing)
    assert first.failed == 1
    again = ScriptedProvider()
    plain, _ = await execute(run, again)
    assert again.requests == [] and plain.failed == 1
    retried, _ = await execute(run, again, retry_failed=True)
    assert [r.prompt for r in again.requests] == ["text number 4"]
    assert retried.failed == 0 and retried.ok == 8


async def test_retry_selected_items_with_an_edited_prompt(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(4))
    await execute(run, ScriptedProvider())
    provider = ScriptedProvider()
    model = run.config.models[0]
    finished, events = await execute(
        run, provider, only=[(model, "item-2")], prompt_override="Say hi to {context}"
    )
    assert [r.prompt for r in provider.requests] == ["Say hi to text number 2"]
    assert finished_ids(events) == ["item-2"]
    assert log_results(run)["item-2"].prompt_override == "Say hi to {context}"


async def test_forced_resume_matches_finished_items_by_id_when_lines_moved(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(6), max_items=3)
    await execute(run, ScriptedProvider())
    source = Path(run.config.input)
    write_jsonl(source, [{"id": "first", "context": "new at the top"}, *items(6)])
    provider = ScriptedProvider()
    unlimited = run.with_config(run.config.model_copy(update={"max_items": None}))
    finished, _ = await execute(unlimited, provider, force=True)
    assert sorted(r.prompt for r in provider.requests) == sorted(
        ["new at the top", "text number 3", "text number 4", "text number 5"]
    )
    assert finished.ok == 7


async def test_a_refusal_is_billed_and_not_retried(tmp_path: Path) -> None:
    refusal = ProviderError("content_filter", "the model refused", usage=Usage(1000, 50))
    run = make_run(tmp_path, items(2))
    finished, _ = await execute(run, ScriptedProvider(lambda r: refusal))
    result = log_results(run)["item-0"]
    assert result.status == "failed" and result.attempts == 1
    assert result.usage == Usage(1000, 50) and result.cost_usd > 0
    assert finished.cost_usd == pytest.approx(2 * result.cost_usd)


async def test_retrying_one_item_of_a_capped_run_keeps_it_capped_and_resumable(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path, items(10), max_items=4)
    await execute(run, ScriptedProvider())
    model = run.config.models[0]
    retried, _ = await execute(run, ScriptedProvider(), only=[(model, "item-1")])
    assert retried.state == "capped" and retried.remaining == 6
    assert log.scan(run.log_path).run_state == "capped"
    finished, _ = await execute(run.for_resume(), ScriptedProvider())
    assert finished.state == "finished" and finished.ok == 10


async def test_paid_retries_never_wait_for_budget_and_respect_the_item_cap(
    tmp_path: Path,
) -> None:
    """An invalid (paid) answer is retried only while budget is free now and the item's
    own cap allows it; otherwise it ends skipped, and the run never hangs."""
    not_json = ScriptedProvider(lambda r: CallResult("not json", Usage(10, 5)))
    run = make_run(
        tmp_path, items(5), workers=1, max_cost=0.0006, max_item_cost=0.0003,
        output_schema={"type": "object"},
    )  # fmt: skip
    with anyio.fail_after(10):
        finished, _ = await execute(run, not_json)
    results = log_results(run).values()
    assert all(r.status in ("failed", "skipped") for r in results)
    assert all(r.cost_usd <= 0.0003 for r in results)
    assert finished.cost_usd <= 0.0006


async def test_a_capped_run_resumes_with_a_higher_cap(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(10), max_cost=0.00003)
    capped, _ = await execute(run, ScriptedProvider())
    assert capped.state == "capped"
    finished, _ = await execute(run.for_resume(max_cost=1.0), ScriptedProvider())
    assert finished.state == "finished" and finished.ok == 10


async def test_a_pause_before_the_run_starts_is_logged(tmp_path: Path) -> None:
    run = make_run(tmp_path, items(3))
    run.pause()
    run.stop()
    await execute(run, ScriptedProvider())
    assert [r["k"] for r in log.read_records(run.log_path)][-2:] == ["pause", "finish"]


async def test_paid_attempts_of_an_aborted_item_still_count_on_resume(tmp_path: Path) -> None:
    calls = 0

    def script(request: CallRequest) -> CallResult:
        nonlocal calls
        calls += 1
        if calls == 3:
            provider.gate = anyio.Event()  # the fourth attempt hangs until aborted
        return CallResult("not json", Usage(1000, 100))

    provider = ScriptedProvider(script)
    run = make_run(tmp_path, items(1), output_schema={"type": "object"})
    run.config = run.config.model_copy(update={"retry": run.config.retry.model_copy(
        update={"retries": 50, "base_s": 0.0})})  # fmt: skip
    async with in_background(run, provider) as outcome:
        await until(lambda: calls == 3 and provider.in_flight == 1)
        run.abort()
    finished, _ = outcome[0]
    assert finished.cost_usd > 0 and finished.remaining == 1
    assert log.scan(run.log_path).cost_usd == pytest.approx(finished.cost_usd)


async def test_a_hung_log_write_does_not_hold_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine._logtask.WRITE_DEADLINE_S", 0.3)
    released = threading.Event()
    writes: list[int] = []

    write_now = log.LogWriter.write_now

    def hung_write(self: log.LogWriter, lines: Sequence[bytes] | bytes) -> None:
        data = lines if isinstance(lines, bytes) else b"".join(lines)
        if b'"k":"result"' not in data:
            return write_now(self, data)  # the header, the session, spending bounds
        writes.append(1)
        released.wait(30)  # a disk that stopped answering

    run = make_run(tmp_path, items(3))
    monkeypatch.setattr(log.LogWriter, "write_group", hung_write)
    monkeypatch.setattr(log.LogWriter, "write_now", hung_write)
    try:
        with anyio.fail_after(10):
            async with in_background(run, ScriptedProvider()) as outcome:
                await until(lambda: bool(writes))
        finished, events = outcome[0]
    finally:
        released.set()
    assert finished.state == "failed"
    assert any(isinstance(e, RunFailed) and "did not finish" in e.message for e in events)
