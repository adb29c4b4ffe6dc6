"""An item that failed and was run again: every view keeps every attempt and follows the
events (the failures list drops it once it is ok, the inspector shows both attempts, the
try column counts them all)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Static

from engine import ErrorInfo, ItemResult, make_config
from engine._events import Event, ItemFinished
from tests.tui._factories import MODEL, FakeClock, run_started, started
from tests.tui._flows import until
from tests.tui._host import HostApp
from tui.model import RunModel
from tui.screens.failures import FailuresScreen
from tui.screens.inspector import InspectorScreen, attempt_rows

pytestmark = pytest.mark.anyio

CONFIG = make_config(input="tickets.jsonl", prompt="Label: {text}")
ERRORS = (
    ErrorInfo("rate_limited", "429 Too Many Requests"),
    ErrorInfo("timeout", "no answer in 60 s"),
)


def failed_record(id: str) -> ItemResult:
    return ItemResult(
        id=id,
        model=MODEL,
        status="failed",
        line=1,
        fields={"text": id},
        attempts=2,
        error=ERRORS[-1],
        attempt_errors=ERRORS,
    )


def ok_record(id: str) -> ItemResult:
    return replace(
        failed_record(id), status="ok", output="billing", attempts=1, error=None, attempt_errors=()
    )


def _model(*ids: str) -> RunModel:
    model = RunModel(clock=FakeClock())
    events: list[Event] = [run_started(MODEL)]
    for id in ids:
        events += [started(id), ItemFinished(failed_record(id))]
    model.apply_all(events)
    return model


def _retried_ok(model: RunModel, id: str) -> None:
    model.apply_all([started(id), ItemFinished(ok_record(id))])


def test_the_try_column_counts_the_attempts_of_every_record() -> None:
    model = _model("a")
    assert (row := model.store.get(MODEL, "a")) is not None and row.attempts == 2
    model.apply_all([started("a")])
    assert (row := model.store.get(MODEL, "a")) is not None and row.attempts == 3
    model.apply_all([ItemFinished(ok_record("a"))])
    assert (row := model.store.get(MODEL, "a")) is not None
    assert (row.status, row.attempts) == ("ok", 3)
    replayed = RunModel(clock=FakeClock())  # a past run read back: the records, no starts
    replayed.apply_all(
        [run_started(MODEL, state="replaying"), ItemFinished(failed_record("a")),
         ItemFinished(ok_record("a"))]
    )  # fmt: skip
    assert (row := replayed.store.get(MODEL, "a")) is not None and row.attempts == 3


async def test_an_item_retried_ok_leaves_an_open_failures_list_and_new_failures_join() -> None:
    model = _model("a", "b")
    log: list[ItemResult] = [failed_record("a"), failed_record("b")]

    async def reload() -> list[ItemResult]:
        return list(log)

    screen = FailuresScreen(list(log), store=model.store, reload=reload)
    app = HostApp(screen)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "space")  # select b
        assert [r.id for r in screen.results] == ["a", "b"]
        _retried_ok(model, "a")
        log[0] = ok_record("a")
        await until(pilot, lambda: [r.id for r in screen.results] == ["b"])
        assert "1 failed" in str(screen.query_one("#failures-summary", Static).content)
        model.apply_all([started("c"), ItemFinished(failed_record("c"))])
        log.append(failed_record("c"))
        await until(pilot, lambda: [r.id for r in screen.results] == ["b", "c"])
        assert screen.query_one("#failures").selected_keys == ((MODEL, "b"),)


async def test_the_inspector_shows_the_failed_attempts_and_the_ok_one_as_they_happen() -> None:
    model = _model("a")
    records = [failed_record("a")]

    async def reload() -> list[ItemResult]:
        return list(records)

    screen = InspectorScreen(
        records[-1], config=CONFIG, records=list(records), store=model.store, reload=reload
    )
    app = HostApp(screen)

    def attempts() -> list[tuple[str, str]]:
        cells = [str(cell.content) for cell in app.screen.query("#attempts > Static")]
        return list(zip(cells[::2], cells[1::2], strict=True))

    async with app.run_test() as pilot:
        await pilot.pause()
        assert attempts() == [
            ("#1", "rate_limited: 429 Too Many Requests"),
            ("#2", "timeout: no answer in 60 s"),
        ]
        records.append(ok_record("a"))
        _retried_ok(model, "a")
        await until(pilot, lambda: len(attempts()) == 3)
        assert attempts()[2] == ("#3 (retry)", "ok")
        assert "· ok" in str(app.screen.query_one("#inspector-title", Static).content)


def test_a_retry_after_an_item_never_sent_numbers_on() -> None:
    never_sent = replace(
        failed_record("a"),
        attempts=0,
        error=ErrorInfo("invalid_input", "no field 'subject'"),
        attempt_errors=(),
    )
    rows = [(label, text) for label, text, _ in attempt_rows([never_sent, ok_record("a")])]
    assert rows == [("#1", "invalid_input: no field 'subject'"), ("#2 (retry)", "ok")]
