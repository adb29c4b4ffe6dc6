"""RunModel folds hand-built engine events into what the run screen shows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine._events import (
    BatchJob,
    BatchJobEnded,
    BatchJobSubmitted,
    CapReached,
    CostUpdated,
    InputWarning,
    ItemsCounted,
    LogRecovered,
    RateLimitUpdated,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStopping,
    WorkersChanged,
)
from tests.tui._factories import (
    MODEL,
    OTHER_MODEL,
    FakeClock,
    done_items,
    finished,
    retrying,
    run_started,
    started,
)
from tui.model import EventBuffer, Notice, RunModel


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def model(clock: FakeClock) -> RunModel:
    return RunModel(clock=clock)


def test_event_buffer_keeps_events_in_order_until_drained() -> None:
    buffer = EventBuffer()
    events = [started("a"), started("b")]
    for event in events:
        buffer(event)
    assert len(buffer) == 2
    assert buffer.drain() == events
    assert buffer.drain() == []


def test_a_new_model_is_idle_and_empty(model: RunModel) -> None:
    assert model.state == "idle"
    assert model.total is None
    assert model.remaining is None
    assert model.eta_s is None
    assert model.elapsed_s == 0
    assert len(model.store) == 0
    assert model.drain_notices() == []


def test_run_started_sets_identity_and_lists_every_model(model: RunModel, clock: FakeClock) -> None:
    model.apply_all([run_started(MODEL, OTHER_MODEL), ItemsCounted(total=10, invalid=2)])
    assert model.state == "running"
    assert model.run_id == "20261122-150000-demo"
    assert model.models == (MODEL, OTHER_MODEL)
    assert list(model.per_model) == [MODEL, OTHER_MODEL]
    assert (model.total, model.invalid) == (10, 2)
    clock.advance(7.5)
    model.tick()
    assert model.elapsed_s == 7.5


def test_a_started_row_is_updated_in_place_when_it_finishes(model: RunModel) -> None:
    model.apply_all([run_started(), started("a"), started("b")])
    assert [model.store[p].status for p in range(2)] == ["running", "running"]
    assert model.counts["running"] == 2
    model.apply_all([finished("b", cost=0.25, tokens=(300, 40), latency_ms=800)])
    row = model.store[1]
    assert (row.id, row.status, row.cost_usd, row.input_tokens, row.output_tokens) == (
        "b",
        "ok",
        0.25,
        300,
        40,
    )
    assert row.latency_ms == 800
    assert row.preview == "answer for b"
    assert len(model.store) == 2
    assert (model.counts["running"], model.counts["ok"]) == (1, 1)
    assert model.active == 1
    assert model.cost_usd == 0.25
    assert (model.input_tokens, model.output_tokens) == (300, 40)


def test_the_same_id_under_two_models_is_two_rows(model: RunModel) -> None:
    model.apply_all(
        [run_started(MODEL, OTHER_MODEL), started("a", MODEL), started("a", OTHER_MODEL)]
    )
    model.apply_all([finished("a", OTHER_MODEL, status="failed", kind="auth", cost=0)])
    assert model.store.get(MODEL, "a").status == "running"  # type: ignore[union-attr]
    assert model.store.get(OTHER_MODEL, "a").status == "failed"  # type: ignore[union-attr]
    assert model.per_model[MODEL].active == 1
    assert model.per_model[OTHER_MODEL].counts["failed"] == 1


def test_a_retry_moves_the_row_through_retrying_and_back(model: RunModel) -> None:
    model.apply_all([run_started(), started("a")])
    model.apply_all([retrying("a", attempt=1, kind="overloaded", delay_s=1.5)])
    row = model.store[0]
    assert (row.status, row.attempts, row.error_kind, row.delay_s) == (
        "retrying",
        1,
        "overloaded",
        1.5,
    )
    assert row.preview == "overloaded on attempt 1"
    assert (model.counts["running"], model.counts["retrying"], model.active) == (0, 1, 1)
    model.apply_all([started("a", attempt=2)])
    row = model.store[0]
    assert (row.status, row.attempts, row.preview, row.error_kind, row.delay_s) == (
        "running",
        2,
        "",
        None,
        0.0,
    )
    model.apply_all([finished("a", attempts=2)])
    assert model.store[0].status == "ok"
    assert model.counts == {
        "running": 0,
        "retrying": 0,
        "submitted": 0,
        "pending": 0,
        "ok": 1,
        "failed": 0,
        "skipped": 0,
        "truncated": 0,
    }
    assert model.store.count("active") == 0


def test_failures_are_grouped_by_error_kind_largest_first(model: RunModel) -> None:
    model.apply_all([run_started()])
    model.apply_all(
        [
            finished("a", status="failed", kind="timeout"),
            finished("b", status="failed", kind="auth"),
            finished("c", status="failed", kind="timeout"),
            finished("d", status="skipped", kind="budget"),
            finished("e", status="skipped"),
            finished("f"),
        ]
    )
    assert model.failure_kinds() == {"timeout": 2, "auth": 1, "budget": 1, "skipped": 1}
    assert [model.store[p].id for p in model.store.kind_view("timeout")] == ["a", "c"]
    assert model.store.kind_view("quota") == ()


def test_a_failed_item_retried_by_the_user_leaves_its_failure_group(model: RunModel) -> None:
    model.apply_all([run_started(), finished("a", status="failed", kind="timeout")])
    assert model.failure_kinds() == {"timeout": 1}
    model.apply_all([started("a", attempt=1)])
    assert model.failure_kinds() == {}
    assert (model.counts["failed"], model.counts["running"]) == (0, 1)
    model.apply_all([finished("a")])
    assert model.counts["ok"] == 1
    assert list(model.store.view("failed")) == []
    assert list(model.store.view("ok")) == [0]
    assert model.finished_items == 2


def test_a_result_without_a_start_creates_its_row(model: RunModel) -> None:
    model.apply_all([run_started(), finished("a", status="skipped", kind="budget", cost=0)])
    row = model.store.get(MODEL, "a")
    assert row is not None
    assert (row.status, row.error_kind, row.preview) == ("skipped", "budget", "it went wrong")
    assert model.counts["skipped"] == 1


def test_per_model_breakdown_sums_cost_tokens_and_latency(model: RunModel) -> None:
    model.apply_all(
        [
            run_started(MODEL, OTHER_MODEL),
            finished("a", MODEL, cost=0.5, tokens=(10, 1), latency_ms=100),
            finished("b", MODEL, cost=0.25, tokens=(20, 2), latency_ms=300),
            finished("a", OTHER_MODEL, status="failed", kind="timeout", cost=0, latency_ms=0),
        ]
    )
    stats = model.per_model[MODEL]
    assert (stats.done, stats.counts["ok"], stats.cost_usd) == (2, 2, 0.75)
    assert (stats.input_tokens, stats.output_tokens) == (30, 3)
    assert stats.mean_latency_ms == 200
    other = model.per_model[OTHER_MODEL]
    assert (other.done, other.counts["failed"], other.mean_latency_ms) == (1, 1, None)


def test_cost_workers_and_run_state_follow_their_events(model: RunModel) -> None:
    model.apply_all(
        [
            run_started(),
            CostUpdated(spent_usd=1.5, reserved_usd=0.25, cap_usd=5.0),
            WorkersChanged(workers=16),
        ]
    )
    assert (model.spent_usd, model.reserved_usd, model.cap_usd) == (1.5, 0.25, 5.0)
    assert model.workers == 16
    model.apply_all([RunPaused()])
    assert model.state == "paused"
    model.apply_all([RunResumed()])
    assert model.state == "running"
    model.apply_all([RunStopping()])
    assert model.state == "stopping"


def test_a_replayed_run_shows_its_rows_but_no_pace(model: RunModel, clock: FakeClock) -> None:
    model.apply_all([run_started(state="replaying"), ItemsCounted(total=40, invalid=0)])
    for second in range(3):
        clock.advance(1.0)
        model.apply_all(done_items(40)[second * 20 : second * 20 + 20])
    assert model.state == "replaying" and len(model.store) == 30
    assert model.throughput.points == [] and model.eta_s is None


def test_a_retry_into_a_model_that_holds_the_run_counts_no_pair_twice(model: RunModel) -> None:
    model.apply_all([run_started(), ItemsCounted(total=5, invalid=0), *done_items(5, fail_every=2)])
    model.apply_all([RunFinished("finished", 2, 3, 0, 0, 0.0, 0, 0, 1.0)])
    model.apply_all([run_started(resumed=True, already_done=5), started("item-00000")])
    assert model.done == 4 and model.remaining == 1
    model.apply_all([finished("item-00000")])
    assert model.done == 5 and model.counts["ok"] == 3


def test_a_resume_that_did_not_replay_counts_the_logs_results(model: RunModel) -> None:
    model.apply_all([run_started(resumed=True, already_done=7), ItemsCounted(10, 0)])
    assert model.done == 7 and model.remaining == 3


def test_rate_limit_back_off_counts_down_on_the_model_clock(
    model: RunModel, clock: FakeClock
) -> None:
    update = RateLimitUpdated(MODEL, 500, 200_000, 120, 40_000, throttled=3, backoff_s=4.0)
    model.apply_all([run_started(), update])
    state = model.rate_limits[MODEL]
    assert state.update == update
    assert state.backoff_left(model.now) == 4.0
    clock.advance(3)
    model.tick()
    assert state.backoff_left(model.now) == 1.0
    clock.advance(3)
    model.tick()
    assert state.backoff_left(model.now) == 0.0


def test_notices_are_handed_out_once(model: RunModel) -> None:
    model.apply_all(
        [
            run_started(),
            InputWarning("3 items had no id and were numbered"),
            LogRecovered(bad_bytes=17, side_file="/runs/x/log.bad"),
            CapReached(cap="max_cost", message="Cost cap of $5.00 reached"),
            RunFailed(message="Every call fails: check the API key"),
        ]
    )
    notices = model.drain_notices()
    assert [n.severity for n in notices] == ["warning", "warning", "warning", "error"]
    assert notices[0] == Notice("warning", "3 items had no id and were numbered")
    assert "17 bytes" in notices[1].message and "/runs/x/log.bad" in notices[1].message
    assert notices[2].message == "Cost cap of $5.00 reached"
    assert model.drain_notices() == []
    assert model.state == "failed"
    assert model.failure == "Every call fails: check the API key"
    assert [cap.cap for cap in model.caps_reached] == ["max_cost"]


def test_run_finished_freezes_time_and_takes_the_engines_figures(
    model: RunModel, clock: FakeClock
) -> None:
    model.apply_all([run_started(), ItemsCounted(total=10, invalid=0), *done_items(4)])
    summary = RunFinished(
        state="stopped",
        ok=4,
        failed=0,
        skipped=0,
        remaining=6,
        cost_usd=0.004,
        input_tokens=400,
        output_tokens=80,
        elapsed_s=12.0,
    )
    model.apply_all([summary])
    clock.advance(60)
    model.tick()
    assert model.state == "stopped"
    assert model.finished == summary
    assert model.elapsed_s == 12.0
    assert model.remaining == 6
    assert model.eta_s is None


def test_throughput_and_cost_rate_get_one_point_per_second(
    model: RunModel, clock: FakeClock
) -> None:
    model.apply_all([run_started(), ItemsCounted(total=100, invalid=0)])
    events = done_items(40)
    for second in range(4):
        clock.advance(0.5)
        model.apply_all(events[second * 20 : second * 20 + 10])
        clock.advance(0.5)
        model.apply_all(events[second * 20 + 10 : second * 20 + 20])
    assert model.throughput.points == [10.0, 10.0, 10.0, 10.0]
    assert model.cost_rate.points == pytest.approx([0.6] * 4)
    assert model.items_per_s == 10.0
    assert model.cost_per_min == pytest.approx(0.6)
    assert model.remaining == 60
    assert model.eta_s == 6.0


def test_a_stall_spreads_the_work_over_the_seconds_it_took(
    model: RunModel, clock: FakeClock
) -> None:
    model.apply_all([run_started()])
    clock.advance(3)
    model.apply_all(done_items(30))
    assert model.throughput.points == [10.0, 10.0, 10.0]


def test_eta_uses_the_overall_rate_before_the_first_full_second(
    model: RunModel, clock: FakeClock
) -> None:
    model.apply_all([run_started(), ItemsCounted(total=30, invalid=0)])
    clock.advance(0.5)
    model.apply_all(done_items(10))
    assert model.items_per_s is None
    assert model.eta_s == pytest.approx(1.0)


def test_a_resumed_run_counts_what_the_log_already_had(model: RunModel) -> None:
    model.apply_all(
        [run_started(resumed=True, already_done=60), ItemsCounted(total=100, invalid=0)]
    )
    model.apply_all(done_items(10))
    assert model.resumed
    assert model.done == 70
    assert model.remaining == 30


def test_version_moves_with_events_and_new_points_only(model: RunModel, clock: FakeClock) -> None:
    model.apply_all([run_started()])
    seen = model.version
    model.apply_all([])
    assert model.version == seen
    model.apply(started("a"))
    assert model.version > seen
    seen = model.version
    clock.advance(1)
    model.tick()
    assert model.version > seen


def test_unknown_event_types_are_ignored(model: RunModel) -> None:
    class FutureEvent:
        pass

    model.apply_all([run_started(), FutureEvent(), started("a")])  # type: ignore[list-item]
    assert model.counts["running"] == 1


def test_a_batch_jobs_items_are_submitted_until_results_and_pending_if_it_gave_none(
    model: RunModel,
) -> None:
    job = BatchJob(MODEL, "batch_1", "running", 3, 0, 0, 3, submitted_at=0.0, expires_at=None)
    model.apply_all([run_started(MODEL), BatchJobSubmitted(job, ("a", "b", "c"))])
    assert [row.status for row in map(model.store.__getitem__, range(3))] == ["submitted"] * 3
    assert model.counts["submitted"] == model.per_model[MODEL].counts["submitted"] == 3
    assert list(model.store.view("active")) == [0, 1, 2] and model.open_batch_jobs == 1
    ended = replace(job, state="expired", succeeded=1, processing=0)
    model.apply_all([finished("a"), BatchJobEnded(ended, unfinished=2)])
    rows = {row.id: row for row in map(model.store.__getitem__, range(3))}
    assert (rows["a"].status, rows["b"].status, rows["c"].status) == ("ok", "pending", "pending")
    assert "batch job batch_1 expired" in rows["b"].preview
    assert (model.counts["submitted"], model.counts["pending"], model.counts["ok"]) == (0, 2, 1)
    assert model.open_batch_jobs == 0
