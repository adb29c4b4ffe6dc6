"""Setup's Steps section: the run's later steps, a judge, or a pipeline file that fills them.

Step 1 is the form itself (its prompt, system prompt, schema and models), so this
section holds only step 1's name and the steps after it, one ``StepEditor`` each:
a name, a prompt template that may read earlier steps (``{answer.output}``,
``{answers}``), an optional system prompt and schema, and the step's models in a
``ModelPicker`` of its own offering the same models as the form's. A judge is a
step of kind ``judge`` whose blank prompt means the engine's built-in one. A debate
is a ``revise`` step after the last one, with its models: each answers, then revises
once seeing the others' answers (blank prompt: the built-in revise prompt).

The section checks nothing itself: it hands the screen ``StepDraft`` texts
(``drafts``) and posts ``Changed`` on every edit; the screen turns them into the
run and shows whatever the engine refuses on ``#steps-problem``. A pipeline file
is read in a worker with the engine's own reader (``load_pipeline``), whose one
line names the file and the line; a file that reads is posted as ``Opened`` for the
screen to fill step 1, and the later steps are laid out here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, SelectionList, Static, TextArea

from engine import REVISED, BatchdeckError, StepSpec, load_pipeline
from tui.model import FIRST_STEP, JUDGE_STEP, StepDraft, StepKind, draft_of
from tui.widgets.model_picker import ModelPicker

Offer = tuple[str, str]
"""A model the pickers offer: its spec, and the note said after it."""
STEP_PREFIX: Final = "step"


class StepEditor(Vertical):
    """One step after the first: its name, moves, prompt, system prompt, schema, models."""

    def __init__(self, draft: StepDraft, offers: Sequence[Offer]) -> None:
        super().__init__()
        self._draft = draft
        self._offers = list(offers)
        self._mounted = False
        """Its fields exist: until then (their own Changed messages come first) the step
        is the draft it was made from."""
        self.removed = False
        """Being removed: its fields go before it does, and it is no step any more."""

    @property
    def kind(self) -> StepKind:
        return self._draft.kind

    def compose(self) -> ComposeResult:
        draft = self._draft
        with Horizontal(classes="step-head"):
            yield Input(draft.name, placeholder="name", classes="step-name")
            yield Button("↑", classes="step-up", compact=True, tooltip="Move up")
            yield Button("↓", classes="step-down", compact=True, tooltip="Move down")
            yield Button("✕", classes="step-remove", compact=True, tooltip="Remove")
        yield TextArea(
            draft.prompt,
            soft_wrap=True,
            classes="step-prompt",
            placeholder=(
                "prompt: {step.output}, {answers}, {field}"
                if draft.kind == "plain"
                else f"blank: the built-in {draft.kind} prompt"
            ),
        )
        yield TextArea(draft.system, soft_wrap=True, classes="step-system",
                       placeholder="system prompt (optional)")  # fmt: skip
        carried = draft.carried is not None and draft.carried.output_schema is not None
        yield Input(
            draft.schema_ref,
            placeholder="schema: the file's" if carried else "schema (optional)",
            classes="step-schema",
        )
        yield ModelPicker(classes="step-models")

    def on_mount(self) -> None:
        picker = self.query_one(ModelPicker)
        for spec, note in self._offers:
            picker.add_model(spec, note, False)
        picker.choose(self._draft.models)
        self._mounted = True

    def number(self, position: int) -> None:
        """Say which step this is (2 for the first after step 1)."""
        what = "prompt" if self.kind == "plain" else self.kind
        self.border_title = f"Step {position} · {what}"

    def offer(self, spec: str, note: str) -> None:
        if not self._mounted:  # on_mount offers what it was given
            self._offers.append((spec, note))
            return
        picker = self.query_one(ModelPicker)
        if spec not in picker.specs():
            picker.add_model(spec, note, False)

    def draft(self) -> StepDraft:
        if not self._mounted:
            return self._draft
        return StepDraft(
            name=self.query_one(".step-name", Input).value,
            models=tuple(self.query_one(ModelPicker).selected),
            prompt=self.query_one(".step-prompt", TextArea).text,
            system=self.query_one(".step-system", TextArea).text,
            schema_ref=self.query_one(".step-schema", Input).value,
            kind=self.kind,
            carried=self._draft.carried,
        )


class StepsEditor(Vertical):
    """Step 1's name and the steps after it; ``Changed`` on every edit."""

    class Changed(Message):
        """A step was added, removed, moved or edited."""

    class Opened(Message):
        """The pipeline file at ``path`` was read: ``steps``, step 1 first."""

        def __init__(self, path: str, steps: tuple[StepSpec, ...]) -> None:
            super().__init__()
            self.path = path
            self.steps = steps

    def __init__(self, *, pipeline: str | None = None, id: str | None = None) -> None:
        """``pipeline``: the file offered in the path field (the last one opened)."""
        super().__init__(id=id)
        self._offers: list[Offer] = []
        self._pipeline = pipeline or ""
        self._first: StepSpec | None = None
        """Step 1 as the open pipeline file gave it."""
        self.opened: str | None = None
        """The pipeline file the steps came from, if they did."""
        self.first_models: tuple[str, ...] = ()
        """Step 1's models: a new step starts with the first of them."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="step1"):
            yield Label("Step 1 name", id="step1-label")
            yield Input(FIRST_STEP, placeholder=FIRST_STEP, id="step1-name")
        yield Vertical(id="step-list")
        with Horizontal(id="step-buttons"):
            yield Button("+ Step", id="add-step", compact=True)
            yield Button("+ Judge", id="add-judge", compact=True)
            yield Button(
                "+ Debate",
                id="add-debate",
                compact=True,
                tooltip="the last step's models revise once, seeing each other's answers",
            )
        yield Input(self._pipeline, placeholder="open pipeline.toml ⏎", id="pipeline")
        yield Static(id="pipeline-problem", classes="problem", markup=False)
        yield Static(id="steps-problem", classes="problem", markup=False)

    # -- what the screen reads and sets ---------------------------------------------

    @property
    def editors(self) -> list[StepEditor]:
        step_list = self.query_one("#step-list")
        return [editor for editor in step_list.query_children(StepEditor) if not editor.removed]

    def drafts(self) -> tuple[StepDraft, ...]:
        """Step 1 (its name, and what a file gave it: the form fills the rest), then the
        later steps; step 1 alone when there are none."""
        name = self.query_one("#step1-name", Input).value
        return (StepDraft(name, carried=self._first), *(e.draft() for e in self.editors))

    def show_problem(self, text: str) -> None:
        self.query_one("#steps-problem", Static).update(text)

    def offer(self, models: Sequence[Offer]) -> None:
        """Offer these models in every step's picker too (those not offered yet)."""
        known = {spec for spec, _ in self._offers}
        for spec, note in models:
            if spec not in known:
                self._offers.append((spec, note))
                for editor in self.editors:
                    editor.offer(spec, note)

    async def fill(self, steps: Sequence[StepSpec], path: str) -> None:
        """Lay out a pipeline file's steps (step 1's own fields are the screen's)."""
        self._first = steps[0]
        self.opened = path
        self.query_one("#step1-name", Input).value = steps[0].name
        step_list = self.query_one("#step-list")
        await self._remove(*self.editors)
        await step_list.mount_all(StepEditor(draft_of(spec), self._offers) for spec in steps[1:])
        self._renumber()

    # -- adding, moving, removing ----------------------------------------------------

    @on(Button.Pressed, "#add-step")
    async def _add_step(self) -> None:
        await self._add("plain")

    @on(Button.Pressed, "#add-judge")
    async def _add_judge(self) -> None:
        await self._add("judge")

    @on(Button.Pressed, "#add-debate")
    async def _add_debate(self) -> None:
        await self._add("revise")

    async def _add(self, kind: StepKind) -> None:
        drafts = self.drafts()
        taken = {draft.name for draft in drafts}
        models = self.first_models[:1]
        if kind == "revise":  # revises the last step: its name, its models
            last = drafts[-1]
            stem, first = f"{last.name}{REVISED}", 1
            models = last.models if len(drafts) > 1 else self.first_models
        else:
            stem = JUDGE_STEP if kind == "judge" else STEP_PREFIX
            first = 1 if kind == "judge" else len(taken) + 1  # a plain step: by its place
        name = next(
            candidate
            for n in range(first, first + len(taken) + 1)
            if (candidate := stem if kind != "plain" and n == 1 else f"{stem}{n}") not in taken
        )
        editor = StepEditor(StepDraft(name, models, kind=kind), self._offers)
        await self.query_one("#step-list").mount(editor)
        self._renumber()
        editor.query_one(".step-prompt", TextArea).focus()

    @on(Button.Pressed, ".step-up, .step-down, .step-remove")
    async def _step_button(self, event: Button.Pressed) -> None:
        editor = next(node for node in event.button.ancestors if isinstance(node, StepEditor))
        editors = self.editors
        index = editors.index(editor)
        step_list = self.query_one("#step-list")
        if event.button.has_class("step-remove"):
            await self._remove(editor)
        elif event.button.has_class("step-up") and index > 0:
            step_list.move_child(editor, before=editors[index - 1])
        elif event.button.has_class("step-down") and index < len(editors) - 1:
            step_list.move_child(editor, after=editors[index + 1])
        self._renumber()

    async def _remove(self, *editors: StepEditor) -> None:
        for editor in editors:
            editor.removed = True
        await self.query_one("#step-list").remove_children(editors)

    def _renumber(self) -> None:
        for position, editor in enumerate(self.editors, start=2):
            editor.number(position)
        self.post_message(self.Changed())

    # -- edits -----------------------------------------------------------------------

    @on(Input.Changed, "#step1-name, .step-name, .step-schema")
    @on(TextArea.Changed, ".step-prompt, .step-system")
    @on(SelectionList.SelectedChanged, ".step-models")
    def _edited(self, event: Message) -> None:
        event.stop()
        self.post_message(self.Changed())

    # -- a pipeline file -------------------------------------------------------------

    @on(Input.Submitted, "#pipeline")
    def _open_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        problem = self.query_one("#pipeline-problem", Static)
        if not path:
            problem.update("")
            self.post_message(self.Changed())
            return
        self._open(path)

    @work(group="pipeline", exclusive=True, exit_on_error=False)
    async def _open(self, path: str) -> None:
        problem = self.query_one("#pipeline-problem", Static)
        try:
            steps = await asyncio.to_thread(load_pipeline, path)
        except BatchdeckError as exc:
            problem.update(str(exc))
            self.post_message(self.Changed())
            return
        problem.update("")
        self.post_message(self.Opened(path, steps))
