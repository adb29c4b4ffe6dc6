"""Setup's Steps: adding steps and a judge, opening a pipeline file, the estimate per step,
and Start launching the pipeline the CLI would (on ``simulate``, the real app under Pilot)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, SelectionList, Static, TextArea

from engine import (
    DEFAULT_MODEL,
    ConfigError,
    RunConfig,
    StepError,
    estimate,
    load_pipeline,
    load_results,
    load_schema,
    split_lane,
)
from engine.cli._args import build_parser, config_from_args
from tests.tui._flows import (
    SIZE,
    TICKET_COUNT,
    TICKETS,
    finished,
    preview_laid_out,
    set_up,
    settle,
    until,
)
from tui import _format
from tui.app import BatchdeckApp, make_app
from tui.model import Form, StepDraft, read_form
from tui.model._setup import STEPS_FIELD
from tui.model._steps import step_specs
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.settings import Settings, load_settings, save_settings
from tui.widgets.input_tree import InputTree
from tui.widgets.steps_editor import StepsEditor

pytestmark = pytest.mark.anyio

SMALL = (80, 24)
"""The smallest terminal Setup must stay readable in."""
PIPELINE = """\
[[step]]
name = "extract"
model = "simulate:gpt-4o-mini"
prompt = "List the entities in: {context}"

[[step]]
name = "classify"
models = ["simulate:gpt-4o-mini", "simulate:gpt-4o"]
prompt = "Classify {context} given {extract.output}"
max_tokens = 64

[[step]]
name = "verdict"
model = "simulate:gpt-4o"
kind = "judge"
"""


def _text(screen: SetupScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def _editor(app: BatchdeckApp) -> StepsEditor:
    return app.screen.query_one(StepsEditor)


async def _press(app: BatchdeckApp, pilot: object, button: str) -> None:
    app.screen.query_one(button, Button).press()
    await settle(app, pilot)  # type: ignore[arg-type]


async def _open(app: BatchdeckApp, pilot: object, path: Path) -> None:
    field = _editor(app).query_one("#pipeline", Input)
    field.value = str(path)
    field.focus()
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(app, pilot)  # type: ignore[arg-type]


def _per_step(config: RunConfig) -> dict[str, tuple[float, float]]:
    """The engine's estimate summed per step: likely and worst-case cost."""
    found = estimate(config)
    out: dict[str, tuple[float, float]] = {}
    for lane in found.models:
        step, _ = split_lane(lane.model)
        likely, high = out.get(step, (0.0, 0.0))
        assert lane.cost_likely is not None and lane.cost_high is not None
        out[step] = (likely + lane.cost_likely, high + lane.cost_high)
    return out


async def test_a_step_and_a_judge_are_estimated_per_step_and_run_to_every_step_s_answer() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0")
        await _press(app, pilot, "#add-step")
        (step,) = _editor(app).editors
        assert step.draft().name == "step2" and step.draft().models == (DEFAULT_MODEL,)
        assert "a step after the first needs a prompt" in _text(screen, "#steps-problem")
        assert screen.query_one("#start", Button).disabled
        step.query_one(".step-prompt", TextArea).load_text("Reply in one word to: {answer.output}")
        await _press(app, pilot, "#add-judge")
        names = [editor.draft().name for editor in _editor(app).editors]
        assert names == ["step2", "judge"] and _text(screen, "#steps-problem") == ""
        assert [e.border_title for e in _editor(app).editors] == [
            "Step 2 · prompt",
            "Step 3 · judge",
        ]
        config = screen.config()
        assert config is not None and [s.name for s in config.steps] == ["answer", *names]
        per_step = _per_step(config)
        shown = _text(screen, "#estimate")
        assert list(per_step) == ["answer", "step2", "judge"]
        for name, (likely, high) in per_step.items():
            line = f"{name:<6} ~{_format.money(likely)} ≤{_format.money(high)}"
            assert line in shown.splitlines(), (line, shown)
        low, high = estimate(config).cost_low, estimate(config).cost_high
        assert low is not None and high is not None
        assert f"{_format.money(low)} – {_format.money(high)}" in shown
        assert f"{TICKET_COUNT} items · {3 * TICKET_COUNT} calls" in shown

        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen)
        await until(pilot, lambda: finished(app), tries=1500)
        run = app.session.run
        assert run is not None and run.config.steps == config.steps
        results = list(load_results(run))
        lanes = {result.model for result in results if result.status == "ok"}
        assert lanes == {f"{step}/{DEFAULT_MODEL}" for step in ("answer", "step2", "judge")}
        assert len(results) == 3 * TICKET_COUNT and {r.status for r in results} == {"ok"}
        judged = [r for r in results if r.model.startswith("judge/")]
        assert all({"verdict", "confidence", "reasoning", "best"} <= set(r.parsed) for r in judged)
    assert load_settings().settings.models == (DEFAULT_MODEL,)


async def test_steps_are_moved_and_removed_and_what_the_engine_refuses_blocks_start() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot)
        await _press(app, pilot, "#add-judge")
        await _press(app, pilot, "#add-step")
        judge, step = _editor(app).editors
        step.query_one(".step-prompt", TextArea).load_text("Shorten {judge.parsed.verdict}")
        await settle(app, pilot)
        assert screen.config() is not None
        await _press(app, pilot, ".step-up")  # the judge's: already first after step 1
        step.query_one(".step-up", Button).press()
        await settle(app, pilot)
        assert _editor(app).editors == [step, judge]
        assert [e.border_title for e in _editor(app).editors] == [
            "Step 2 · prompt",
            "Step 3 · judge",
        ]
        assert "cycle (step3 -> judge -> step3)" in _text(screen, "#steps-problem")
        step.query_one(".step-prompt", TextArea).load_text("Shorten {jduge.output}")
        await settle(app, pilot)
        problem = _text(screen, "#steps-problem")
        assert problem == (
            "step step3: the prompt's {jduge.output} reads step jduge, and there is no such step"
        )
        assert screen.query_one("#start", Button).disabled
        step.query_one(".step-prompt", TextArea).load_text("Shorten {verdict_text}")
        await settle(app, pilot)
        assert _text(screen, "#steps-problem").startswith(
            "step step3's prompt uses {verdict_text}, which is no step's answer and no field"
        )
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen and app.session.run is None
        step.query_one(".step-remove", Button).press()
        await until(pilot, lambda: _text(screen, "#steps-problem") == "")  # once it is gone
        assert _editor(app).editors == [judge]
        assert not screen.query_one("#start", Button).disabled


async def test_a_bad_pipeline_file_is_its_line_and_blocks_start_then_a_good_one_fills_the_steps(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(PIPELINE.replace("{extract.output}", "{extrct.output}"))
    with pytest.raises(ConfigError) as refused:
        load_pipeline(bad)
    good = tmp_path / "run.toml"
    good.write_text(PIPELINE)
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0")
        await _open(app, pilot, bad)
        assert _text(screen, "#pipeline-problem") == str(refused.value)
        assert f"{bad}, line 9: " in str(refused.value)
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen and app.session.run is None
        assert _editor(app).editors == []

        await _open(app, pilot, good)
        assert _text(screen, "#pipeline-problem") == ""
        assert screen.query_one("#prompt", TextArea).text == "List the entities in: {context}"
        assert screen.query_one("#models", SelectionList).selected == ["simulate:gpt-4o-mini"]
        editors = _editor(app).editors
        assert [e.draft().name for e in editors] == ["classify", "verdict"]
        assert editors[0].draft().models == ("simulate:gpt-4o-mini", "simulate:gpt-4o")
        cli = config_from_args(
            build_parser().parse_args(
                ["run", str(TICKETS), "--pipeline", str(good), "--sim-latency-ms", "0"]
            )
        )
        config = screen.config()
        assert config is not None and config.steps == load_pipeline(good)
        assert config.fingerprint() == cli.fingerprint()
        assert "classify ~" in _text(screen, "#estimate")

        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, RunScreen)
        await until(pilot, lambda: finished(app), tries=1500)
        assert app.session.run is not None
        results = list(load_results(app.session.run))
        assert len(results) == 4 * TICKET_COUNT and {r.status for r in results} == {"ok"}
    saved = load_settings().settings
    assert saved.pipeline_file == str(good) and saved.models == ("simulate:gpt-4o-mini",)


async def test_the_last_pipeline_file_is_offered_again() -> None:
    save_settings(Settings(pipeline_file="/somewhere/run.toml"))
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert _editor(app).query_one("#pipeline", Input).value == "/somewhere/run.toml"


def test_a_form_with_steps_is_the_pipeline_and_step_1_is_the_form_s_own() -> None:
    form = Form(
        path=str(TICKETS),
        models=(DEFAULT_MODEL,),
        prompt="Answer {context}",
        system="Be brief",
        texts={},
        steps=(
            StepDraft("first"),
            StepDraft("judge", (DEFAULT_MODEL,), kind="judge"),
        ),
    )
    config = read_form(form)
    assert isinstance(config, RunConfig)
    first, judge = config.steps
    assert (first.name, first.prompt, first.system, first.models) == (
        "first",
        "Answer {context}",
        "Be brief",
        (DEFAULT_MODEL,),
    )
    assert judge.kind == "judge" and judge.prompt is None
    assert config.prompt is None and config.models == (DEFAULT_MODEL,)
    named_twice = Form(
        path=str(TICKETS),
        models=(DEFAULT_MODEL,),
        prompt="",
        system="",
        texts={},
        steps=(StepDraft("a"), StepDraft("a", (DEFAULT_MODEL,), "x {a.output}")),
    )
    (problem,) = read_form(named_twice)  # type: ignore[misc]
    assert problem.field == STEPS_FIELD and problem.message == "step a: a second step has this name"


def test_snapshot_of_setup_with_two_steps_at_80x24(
    snap_compare: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(TICKETS, inputs / "tickets.jsonl")
    monkeypatch.chdir(inputs)

    async def fill(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BatchdeckApp)
        screen = await set_up(app, pilot, path=Path("tickets.jsonl"))
        await _press(app, pilot, "#add-step")
        (step,) = _editor(app).editors
        step.query_one(".step-prompt", TextArea).load_text("One word for: {answer.output}")
        tree = screen.query_one(InputTree)
        await until(pilot, lambda: len(tree.root.children) == 1)
        await settle(app, pilot)
        await until(pilot, lambda: preview_laid_out(screen))
        step.query_one(".step-name", Input).focus()  # the pane scrolls to the step
        await pilot.pause()

    assert snap_compare(  # type: ignore[operator]
        make_app(first="setup"), terminal_size=SMALL, run_before=fill
    )


def test_a_step_s_schema_is_read_and_what_is_wrong_names_the_step(tmp_path: Path) -> None:
    schema = tmp_path / "label.json"
    schema.write_text(
        '{"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}'
    )
    first = StepDraft("tag", (DEFAULT_MODEL,), "Tag {context}", schema_ref=str(schema))
    then = StepDraft("say", (DEFAULT_MODEL,), "Say {tag.parsed.label}")
    tag, _ = step_specs([first, then])
    assert tag.output_schema == load_schema(str(schema))
    with pytest.raises(StepError, match=r"^step say: .*schema has no field colour \(it has: label"):
        step_specs([first, replace(then, prompt="Say {tag.parsed.colour}")])
    with pytest.raises(StepError, match=r"^step tag: schema .*nope\.json: no such file$"):
        step_specs([replace(first, schema_ref=str(tmp_path / "nope.json")), then])
    with pytest.raises(StepError, match=r"^step 2: step name 'say it' must be letters"):
        step_specs([first, replace(then, name="say it")])


async def test_a_debate_revises_the_last_steps_answers_with_its_models_then_a_judge() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, sim_latency_ms="0")
        screen.query_one("#models", SelectionList).select("simulate:gpt-4o")
        await settle(app, pilot)
        await _press(app, pilot, "#add-debate")
        (revise,) = _editor(app).editors
        both = (DEFAULT_MODEL, "simulate:gpt-4o")
        assert revise.draft().name == "answer-revised" and revise.draft().models == both
        assert revise.border_title == "Step 2 · revise" and _text(screen, "#steps-problem") == ""
        await _press(app, pilot, "#add-judge")
        config = screen.config()
        assert config is not None
        assert [(s.name, s.kind) for s in config.steps] == [
            ("answer", "plain"),
            ("answer-revised", "revise"),
            ("judge", "judge"),
        ]
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        await until(pilot, lambda: finished(app), tries=1500)
        run = app.session.run
        assert run is not None
        results = list(load_results(run))
        assert len(results) == 5 * TICKET_COUNT and {r.status for r in results} == {"ok"}
        revised = {r.model for r in results if r.model.startswith("answer-revised/")}
        assert revised == {f"answer-revised/{model}" for model in both}


async def test_a_debate_over_one_model_is_refused_before_start() -> None:
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot)
        await _press(app, pilot, "#add-debate")
        assert "each revises its answer seeing the others'" in _text(screen, "#steps-problem")
        assert screen.query_one("#start", Button).disabled
