"""The item inspector: what it shows for a result, and the retries it asks the app for."""

from __future__ import annotations

from typing import Any

import pytest
from textual.message import Message
from textual.widgets import Static, TextArea

from engine import ErrorInfo, ItemResult, RunConfig, Usage, make_config, sent_prompt
from engine._steps import StepSpec
from tests.tui._factories import MODEL
from tests.tui._host import SNAPSHOT_SIZE, HostApp, assert_bindings_have_ids, posted
from themes import BATCHDECK_LIGHT
from tui.screens.inspector import InspectorScreen, template_for

pytestmark = pytest.mark.anyio

CONFIG = make_config(
    input="tickets.jsonl",
    prompt="Classify this support ticket.\nSubject: {subject}\n{text}",
    system="You label support tickets with one word.",
)
FIELDS = {
    "id": "ticket-0003",
    "subject": "Refund",
    "text": "I was charged twice for the [bold]annual[/] plan.",
    "priority": 2,
    "tags": ["billing", "urgent"],
}


def failed(**changes: Any) -> ItemResult:
    values: dict[str, Any] = {
        "id": "ticket-0003",
        "model": MODEL,
        "status": "failed",
        "line": 4,
        "fields": FIELDS,
        "usage": Usage(412, 0, 128),
        "latency_ms": 30_412.0,
        "attempts": 3,
        "error": ErrorInfo("timeout", "no answer in 30 s"),
        "attempt_errors": (
            ErrorInfo("rate_limited", "429 Too Many Requests"),
            ErrorInfo("server_error", "502 Bad Gateway"),
            ErrorInfo("timeout", "no answer in 30 s"),
        ),
    }
    values.update(changes)
    return ItemResult(**values)


def succeeded(**changes: Any) -> ItemResult:
    values: dict[str, Any] = {
        "status": "ok",
        "output": '{"label": "billing", "confidence": 0.93}',
        "parsed": {"label": "billing", "confidence": 0.93},
        "usage": Usage(412, 17, 0),
        "cost_usd": 0.0000721,
        "latency_ms": 640.0,
        "attempts": 2,
        "error": None,
        "attempt_errors": (ErrorInfo("overloaded", "529 Overloaded"),),
        "finish_reason": "stop",
        "simulated": True,
    }
    values.update(changes)
    return failed(**values)


def _text(app: HostApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def _pairs(app: HostApp, grid: str) -> list[tuple[str, str]]:
    cells = [str(cell.content) for cell in app.screen.query(f"#{grid} > Static").results(Static)]
    return list(zip(cells[::2], cells[1::2], strict=True))


def _host(result: ItemResult, config: RunConfig = CONFIG) -> HostApp:
    return HostApp(InspectorScreen(result, config=config))


async def test_a_failed_item_shows_prompt_system_attempts_usage_and_fields() -> None:
    app = _host(failed())
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _text(app, "#prompt") == (
            "Classify this support ticket.\nSubject: Refund\n"
            "I was charged twice for the [bold]annual[/] plan."
        )
        assert _text(app, "#system") == "You label support tickets with one word."
        assert _text(app, "#response") == "(no output)"
        assert not app.screen.query("#parsed")
        assert _pairs(app, "attempts") == [
            ("#1", "rate_limited: 429 Too Many Requests"),
            ("#2", "server_error: 502 Bad Gateway"),
            ("#3", "timeout: no answer in 30 s"),
        ]
        call = dict(_pairs(app, "call"))
        assert call["input tokens"] == "412"
        assert call["cached tokens"] == "128"
        assert call["latency"] == "30.4s (30,412 ms)"
        assert call["timeout"] == "60 s a call (the default)"
        assert call["simulated"] == "no"
        assert _pairs(app, "fields") == [
            ("id", "ticket-0003"),
            ("subject", "Refund"),
            ("text", "I was charged twice for the [bold]annual[/] plan."),
            ("priority", "2"),
            ("tags", '["billing", "urgent"]'),
        ]


async def test_an_ok_item_shows_its_response_parsed_output_and_the_attempt_that_worked() -> None:
    app = _host(succeeded())
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _text(app, "#response") == '{"label": "billing", "confidence": 0.93}'
        assert _text(app, "#parsed") == '{\n  "label": "billing",\n  "confidence": 0.93\n}'
        assert _pairs(app, "attempts") == [
            ("#1", "overloaded: 529 Overloaded"),
            ("#2", "ok (stop)"),
        ]
        call = dict(_pairs(app, "call"))
        assert call["output tokens"] == "17"
        assert call["cost"] == "$0.000072"
        assert call["finish reason"] == "stop"
        assert call["simulated"] == "yes"


async def test_a_skipped_item_says_why_it_was_never_sent() -> None:
    result = failed(
        status="skipped",
        attempts=0,
        attempt_errors=(),
        error=ErrorInfo("budget", "the run's cost cap is reached"),
    )
    app = _host(result)
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _pairs(app, "attempts") == [("skipped", "budget: the run's cost cap is reached")]


async def test_a_prompt_that_cannot_be_rendered_shows_the_reason() -> None:
    app = _host(failed(fields={"id": "t1", "body": "no subject here"}))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        prompt = app.screen.query_one("#prompt", Static)
        assert str(prompt.content) == (
            "cannot render the prompt: no fields subject, text for the prompt template"
        )
        assert prompt.has_class("-problem")


def test_the_prompt_comes_from_the_edit_then_the_items_own_prompt_then_the_run() -> None:
    own = {**FIELDS, "prompt": "Summarise: {text}"}
    assert template_for(failed(), CONFIG) == (CONFIG.prompt, "the run's template")
    assert template_for(failed(fields=own), CONFIG) == ("Summarise: {text}", "the item's own")
    edited = failed(fields=own, prompt_override="Tag {subject}")
    assert template_for(edited, CONFIG) == ("Tag {subject}", "edited for a retry")
    no_prompt = make_config(input="tickets.jsonl")
    assert template_for(failed(fields={"id": "t1", "text": "hi"}), no_prompt)[0] == "{text}"
    # An edited template replaces the item's own prompt, as the engine does on retry.
    assert sent_prompt(CONFIG, MODEL, own, template="Tag {subject}") == "Tag Refund"
    assert sent_prompt(CONFIG, MODEL, own).startswith("Summarise: I was")


async def test_r_asks_the_app_to_retry_with_the_prompt_the_item_had() -> None:
    messages: list[Message] = []
    app = _host(failed(prompt_override="Tag {subject}"))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, InspectorScreen)
    [request] = posted(messages, InspectorScreen.RetryRequested)
    assert request.key == (MODEL, "ticket-0003")
    assert (request.model, request.id, request.prompt_override) == (
        MODEL,
        "ticket-0003",
        "Tag {subject}",
    )
    assert app.answers == [None]


async def test_m_retries_a_truncated_item_with_twice_the_limit_it_was_cut_off_at() -> None:
    truncated = succeeded(
        status="truncated",
        finish_reason="length",
        error=ErrorInfo("truncated", "cut off at 600 output tokens"),
        max_tokens=600,
    )
    messages: list[Message] = []
    app = _host(truncated)
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("m")
        await pilot.pause()
    [request] = posted(messages, InspectorScreen.RetryRequested)
    assert (request.key, request.max_tokens) == ((MODEL, "ticket-0003"), 1200)
    untouched: list[Message] = []
    app = _host(succeeded())  # an answer that was not cut off has nothing to lengthen
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=untouched.append) as pilot:
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
    assert posted(untouched, InspectorScreen.RetryRequested) == []


async def test_e_edits_the_template_with_a_live_preview_and_ctrl_s_retries_with_it() -> None:
    messages: list[Message] = []
    app = _host(failed())
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("e")
        editor = app.screen.query_one("#prompt-editor", TextArea)
        assert editor.has_focus
        assert editor.text == CONFIG.prompt
        editor.load_text("Priority {priority}: ")
        editor.move_cursor(editor.document.end)
        await pilot.press(*"rush")
        await pilot.pause()
        assert _text(app, "#prompt") == "Priority 2: rush"
        assert not posted(messages, InspectorScreen.RetryRequested)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, InspectorScreen)
    [request] = posted(messages, InspectorScreen.RetryRequested)
    assert request.prompt_override == "Priority {priority}: rush"


async def test_an_edit_that_cannot_render_is_not_sent() -> None:
    messages: list[Message] = []
    app = _host(failed())
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await pilot.press("e")
        app.screen.query_one("#prompt-editor", TextArea).load_text("Tell me about {nothing}")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        problem = _text(app, "#editor-problem")
        assert problem == "cannot retry with this prompt: no field nothing for the prompt template"
    assert not posted(messages, InspectorScreen.RetryRequested)


async def test_escape_leaves_the_editor_first_and_the_screen_second() -> None:
    messages: list[Message] = []
    app = _host(failed())
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        screen = app.screen
        await pilot.press("e", "r", "e")  # typed into the editor, not actions
        assert screen.query_one("#prompt-editor", TextArea).text.endswith("{text}re")
        assert screen.active_bindings["escape"].binding.description == "Cancel edit"
        await pilot.press("escape")
        assert app.screen is screen
        assert not screen.query_one("#editor").display
        assert _text(app, "#prompt").startswith("Classify this support ticket.")
        assert screen.active_bindings["escape"].binding.description == "Back"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
    assert not posted(messages, InspectorScreen.RetryRequested)


def test_snapshot_of_a_failed_item(snap_compare: Any) -> None:
    assert snap_compare(_host(failed()), terminal_size=SNAPSHOT_SIZE)


def test_snapshot_of_an_ok_item_in_the_light_theme(snap_compare: Any) -> None:
    app = HostApp(InspectorScreen(succeeded(), config=CONFIG), theme=BATCHDECK_LIGHT.name)
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE)


def test_snapshot_while_editing_the_prompt(snap_compare: Any) -> None:
    assert snap_compare(_host(failed()), terminal_size=SNAPSHOT_SIZE, press=["e", *" {oops"])


def test_every_binding_has_an_id() -> None:
    assert_bindings_have_ids(InspectorScreen)


@pytest.mark.parametrize(
    ("model", "seconds", "shown"),
    [
        ("llamacpp:smollm2", None, "600 s a call (a local server's default)"),
        ("openai:gpt-4o-mini", 5.0, "5 s a call (--timeout)"),
    ],
)
async def test_the_call_shows_how_long_it_may_wait(
    model: str, seconds: float | None, shown: str
) -> None:
    config = make_config(input="tickets.jsonl", models=(model,), timeout=seconds)
    app = _host(failed(model=model), config)
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert dict(_pairs(app, "call"))["timeout"] == shown


PIPELINE = make_config(
    input="tickets.jsonl",
    models=("simulate:gpt-4o-mini",),
    steps=(
        StepSpec(
            name="extract",
            models=("simulate:gpt-4o-mini",),
            prompt="List what this is about: {text}",
            system="You list topics.",
        ),
        StepSpec(
            name="classify",
            models=("simulate:gpt-4o-mini",),
            prompt="Label ({subject}): {extract.output}",
        ),
    ),
)
EXTRACT, CLASSIFY = "extract/simulate:gpt-4o-mini", "classify/simulate:gpt-4o-mini"


async def test_a_steps_lane_shows_the_prompt_each_execution_was_sent() -> None:
    """Its step's template with the answer the earlier step had given when each execution
    started: classify failed on extract's first answer, extract was run again, and the
    retry of classify read the new one."""
    first_extract = succeeded(model=EXTRACT, output="refunds", finished_at=100.0)
    second_extract = succeeded(model=EXTRACT, output="double charge", finished_at=300.0)
    first = failed(model=CLASSIFY, finished_at=200.0, latency_ms=10.0)
    second = succeeded(model=CLASSIFY, finished_at=400.0, latency_ms=10.0, attempts=1,
                       attempt_errors=())  # fmt: skip
    screen = InspectorScreen(
        second,
        config=PIPELINE,
        records=[first, second],
        earlier={EXTRACT: [first_extract, second_extract]},
    )
    app = HostApp(screen)
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _text(app, "#prompt") == "Label (Refund): double charge"
        sections = {str(s.border_title): s for s in app.screen.query(".section")}
        earlier = sections["Prompt sent to #1-#3"].query_one(Static)
        assert str(earlier.content) == "Label (Refund): refunds"
        assert _text(app, "#system") == "(none)"  # the step's own, not the run's
        assert "step classify's template" in str(app.screen.query_one("#call").children[-1].content)


async def test_a_lane_skipped_after_its_item_stopped_says_it_was_not_sent() -> None:
    skipped = failed(model=CLASSIFY, status="skipped", attempts=0, attempt_errors=(),
                     error=ErrorInfo("upstream", "extract: timeout"))  # fmt: skip
    app = HostApp(
        InspectorScreen(skipped, config=PIPELINE, earlier={EXTRACT: [failed(model=EXTRACT)]})
    )
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.pause()
        assert _text(app, "#prompt") == "not sent: the item stopped at extract: timeout"
