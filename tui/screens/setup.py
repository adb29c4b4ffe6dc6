"""Set up a run: the input file, the prompt, the models, the caps, a pre-flight estimate, Start.

Everything that reads a file (the input's preview, the estimate over the whole
input, the key store and price table) runs in a thread inside an async worker
of its own group, so typing never waits on the disk; the estimate is debounced
(it waits ``ESTIMATE_DELAY_S`` and a newer change cancels it, ``exclusive``).
What the user gets wrong (a file that cannot be read, a value that is not a
number, a template with an unknown placeholder) is one line next to the field,
from the engine's own checks (``PromptTemplate.parse``, ``unknown_placeholders``)
and the form's (``tui.model.read_form``), never a traceback. The form itself
(its fields, their starting values, the config its texts describe) is
``tui.model``'s: this screen draws it and marks the field a problem names.

The preview table's columns are as wide as the cells it shows, set when they
are added: a DataTable left to size them does it when idle, and a paint before
that caches every cell cut to its column's label (the cell cache does not key
on width), so the table could stay drawn at the labels' widths.

What no longer applies goes: a path that cannot be read clears the previous
file's preview, rendered prompt and estimate. A file with no item that can be
read (a binary file, say) is a problem on the path, and the template is left
as the user had it rather than filled from fields it does not have. Start is
refused, and its button disabled, while any field shows a problem: the user
never starts a run the form itself says is wrong. The format chooser is the
CLI's ``--format``: blank means "from the file's name".

The panes that scroll are no Tab stops: a focused pane takes no keys the user
can see go anywhere. Focus moving to a field scrolls its pane to it, and the
rendered prompt, the end of the middle pane, is a stop of its own to read it by.

The run's later steps, a judge, or a pipeline file that fills them are the Steps
section's (``tui.widgets.steps_editor``): the screen offers it the same models as its
own picker, fills step 1's fields from a file it opened, and checks its drafts with
the rest of the form (``read_form``, ``missing_fields``); what is wrong shows on
``#steps-problem`` and blocks Start like any field's problem.

The screen does not create the run: Start posts ``StartRequested`` with a
validated ``RunConfig`` and the app starts it (and remembers the file).

Try (``ctrl+t``) runs a few items of the form's run in ``TryPanel``, shown in the
form's place until ``escape``; once a try ends, the estimate is calibrated from
the tokens its calls used (each later try's over the earlier ones').
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import urlsplit

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    DirectoryTree,
    Footer,
    Input,
    Label,
    OptionList,
    Select,
    SelectionList,
    Static,
    TextArea,
)

from engine import (
    BatchdeckError,
    Calibration,
    ConfigError,
    Item,
    Mode,
    Preview,
    PriceTable,
    PromptTemplate,
    RunConfig,
    StepSpec,
    default_template_for,
    estimate,
    preview_input,
    render_item,
    unknown_placeholders,
)
from engine.keys import KeyStatus, key_status
from engine.readers import FORMATS
from tui.model import (
    FORM_FIELDS,
    PATH_FIELD,
    SCHEMA_FIELD,
    STEPS_FIELD,
    Form,
    ModelChoice,
    added_choices,
    default_models,
    estimate_text,
    initial_texts,
    missing_fields,
    mode_text,
    model_choices,
    read_form,
    split_modes,
    with_modes,
)
from tui.settings import Settings
from tui.widgets.input_tree import InputTree
from tui.widgets.model_adder import ModelAdder
from tui.widgets.model_picker import ModelPicker
from tui.widgets.steps_editor import StepsEditor
from tui.widgets.try_panel import TryPanel

ESTIMATE_DELAY_S: Final = 0.3
PREVIEW_FIELDS: Final = 4
"""Columns of the preview table besides the id: enough to recognise the items."""
CELL_CHARS: Final = 40
PROBLEMS: Final = (
    "#path-problem",
    "#prompt-problem",
    "#caps-problem",
    "#steps-problem",
    "#pipeline-problem",
)
"""Where the form says what is wrong: while any says something, Start is refused."""
_NO_FILE: Final = "Pick a file to preview it."
_NO_ESTIMATE: Final = "Estimate: waiting for a file."


class SetupScreen(Screen[None]):
    """The form for a new run; posts ``StartRequested`` with a valid ``RunConfig``."""

    AUTO_FOCUS = "#path"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start", id="setup.start"),
        Binding("ctrl+t", "try", "Try", id="setup.try"),
        Binding("ctrl+r", "app.history", "History", id="setup.history"),
        Binding("escape", "app.show_run", "Run screen", id="setup.run"),
        Binding("b", "switch_mode", "Online/batch", id="setup.mode"),
    ]

    class StartRequested(Message):
        """The user asked to start a run with ``config``; ``added`` is every model added by
        hand (``provider:model`` -> base URL, "" for the provider's), to offer again;
        ``pipeline`` the pipeline file its steps came from."""

        def __init__(
            self,
            config: RunConfig,
            added: Mapping[str, str] | None = None,
            pipeline: str | None = None,
        ) -> None:
            super().__init__()
            self.config = config
            self.added = dict(added or {})
            self.pipeline = pipeline

    def __init__(
        self,
        settings: Settings,
        *,
        root: Path | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        """``root`` is where the file tree starts (default: the last input dir, else cwd)."""
        super().__init__(name=name, id=id)
        self.settings = settings
        last = Path(settings.last_input_dir) if settings.last_input_dir else None
        self.root = root or (last if last is not None and last.is_dir() else Path.cwd())
        self.preview: Preview | None = None
        self._item: Item | None = None
        self._template_edited = False
        self._choices: dict[str, ModelChoice] = {}
        self._added: dict[str, str] = dict(settings.added_models)
        """Models added by hand: ``provider:model`` -> base URL ("" for the provider's)."""
        self._priced: tuple[PriceTable, list[KeyStatus]] | None = None
        self._initial, self._initial_warning = initial_texts(settings.caps)
        self._saved_models, self._modes = split_modes(settings.models)
        """``_modes``: the models set online or batch one by one (``b``); the others go as
        the run's Batch setting says."""
        self._run_batch = False
        """The Batch setting, as of the last form that made a run."""
        self._calibration: Calibration | None = None
        """What the tries' calls used, which the estimate is calibrated from."""
        self._models_ready = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Horizontal(id="setup-main"):
            with Vertical(id="setup-input", classes="pane") as pane:
                pane.border_title = "Input"
                yield Input(placeholder="path/to/items.jsonl ⏎", id="path")
                yield Select(
                    [(name, name) for name in FORMATS],
                    prompt="format: auto",
                    compact=True,
                    id="format",
                )
                yield Static(id="path-problem", classes="problem", markup=False)
                recent = OptionList(*self.settings.recent_files, id="recent")
                recent.border_title = "Recent"
                yield recent
                yield InputTree(self.root, id="tree")
            with VerticalScroll(id="setup-prompt", classes="pane", can_focus=False) as pane:
                pane.border_title = "Preview & prompt"
                yield Static(_NO_FILE, id="preview-summary", markup=False)
                yield DataTable(cursor_type="row", zebra_stripes=True, id="preview-items")
                yield Static(id="invalid", classes="problem", markup=False)
                yield Label("Prompt template ({field} fills in an item's field)")
                yield TextArea(id="prompt", soft_wrap=True)
                yield Label("System prompt")
                yield TextArea(id="system", soft_wrap=True)
                yield Static(id="prompt-problem", classes="problem", markup=False)
                rendered = Static(id="rendered", markup=False)
                rendered.border_title = "Rendered prompt"
                rendered.can_focus = True  # a stop to read it by: the pane scrolls to it
                yield rendered
                yield Label("Steps after this prompt")
                yield StepsEditor(pipeline=self.settings.pipeline_file, id="steps")
            with VerticalScroll(id="setup-run", classes="pane", can_focus=False) as pane:
                pane.border_title = "Models & caps"
                yield ModelPicker(id="models")
                yield Static(id="model-detail", markup=False)
                yield ModelAdder(id="add-model-box")
                with Grid(id="caps"):
                    for field in FORM_FIELDS:
                        yield Label(field.label, classes="cap-label")
                        yield Input(
                            self._initial.get(field.name, ""),
                            placeholder=field.placeholder,
                            id=f"cap-{field.name}",
                            classes="cap",
                        )
                yield Static(id="caps-problem", classes="problem", markup=False)
                estimate_box = Static(_NO_ESTIMATE, id="estimate", markup=False)
                estimate_box.border_title = "Pre-flight estimate"
                yield estimate_box
                yield Button("Try a few items (ctrl+t)", id="try")
                yield Button("Start (ctrl+s)", id="start", variant="primary")
        yield TryPanel(id="try-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TryPanel).display = False
        if self._initial_warning:
            self.notify(self._initial_warning, severity="warning")
        self._load_models()
        if self.settings.recent_files:
            self.query_one("#path", Input).value = self.settings.recent_files[0]
            self._load_preview()

    @work(group="models", exit_on_error=False)
    async def _load_models(self) -> None:
        prices, keys = await asyncio.gather(
            asyncio.to_thread(PriceTable.load), asyncio.to_thread(key_status)
        )
        self._priced = (prices, keys)
        listed = await asyncio.to_thread(model_choices, prices, keys)
        added = added_choices(self._added, prices, keys)
        hand = {choice.spec for choice in added}
        choices = [*listed[:1], *added, *(c for c in listed[1:] if c.spec not in hand)]
        self._choices = {choice.spec: choice for choice in choices}
        chosen = default_models(self._saved_models, choices)
        picker = self.query_one("#models", ModelPicker)
        for choice in choices:
            picker.add_model(choice.spec, self._note(choice), choice.spec in chosen)
        self._steps().offer([(choice.spec, self._note(choice)) for choice in choices])
        self._models_ready.set()
        self._changed()

    def _steps(self) -> StepsEditor:
        return self.query_one("#steps", StepsEditor)

    def _note(self, choice: ModelChoice) -> str:
        """What the picker says after a model's name: where it runs, whether it has a key."""
        where = self._added.get(choice.spec)
        host = f"  @{urlsplit(where).netloc.rpartition('@')[2]}" if where else ""
        mode = self._modes.get(choice.spec)
        return host + ("" if choice.has_key else "  no key") + (f"  {mode}" if mode else "")

    @on(ModelAdder.Added)
    def _model_added(self, event: ModelAdder.Added) -> None:
        if self._priced is None:
            self.notify("Still loading the models: add it again in a moment.")
            return
        self._added[event.spec] = event.base_url or ""
        (choice,) = added_choices({event.spec: self._added[event.spec]}, *self._priced)
        self._choices[event.spec] = choice
        picker = self.query_one("#models", ModelPicker)
        listed = picker.specs()
        if event.spec in listed:
            picker.select(event.spec)
        else:
            picker.add_model(event.spec, self._note(choice), True)
            listed.append(event.spec)
        picker.highlighted = listed.index(event.spec)  # scrolled into view
        self._steps().offer([(event.spec, self._note(choice))])
        self._show_model(event.spec)
        self._changed()

    # -- the input file ------------------------------------------------------------

    @on(DirectoryTree.FileSelected, "#tree")
    def _file_picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)
        self._load_preview()

    @on(OptionList.OptionSelected, "#recent")
    def _recent_picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#path", Input).value = str(event.option.prompt)
        self._load_preview()

    @on(Input.Submitted, "#path")
    def _path_submitted(self) -> None:
        self._load_preview()

    @on(Select.Changed, "#format")
    def _load_preview(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if path:
            self._preview(path, self._format())

    def _format(self) -> str | None:
        value = self.query_one("#format", Select).value
        return value if isinstance(value, str) else None

    @work(group="preview", exclusive=True, exit_on_error=False)
    async def _preview(self, path: str, fmt: str | None) -> None:
        problem = self.query_one("#path-problem", Static)
        try:
            preview = await asyncio.to_thread(preview_input, path, fmt)
        except (BatchdeckError, OSError) as exc:
            self._forget_preview()
            problem.update(str(exc))
            self._changed()
            return
        self.preview = preview
        self._show_preview(preview)
        if not preview.valid_count:
            first = preview.invalid[0] if preview.invalid else None
            reason = f": line {first.line}: {first.reason}" if first is not None else ""
            problem.update(f"no item of {path} can be read{reason} (is it a text file?)")
            self._changed()
            return
        problem.update("")
        prompt = self.query_one("#prompt", TextArea)
        if not self._template_edited or not prompt.text.strip():
            prompt.load_text(default_template_for(preview.fields))
            self._template_edited = False
        self._changed()

    def _forget_preview(self) -> None:
        """The path changed to one that cannot be read: nothing of the last file applies."""
        self.preview = None
        self._item = None
        self.query_one("#preview-summary", Static).update(_NO_FILE)
        self.query_one("#preview-items", DataTable).clear(columns=True)
        self.query_one("#invalid", Static).update("")
        self.query_one("#rendered", Static).update("")
        self.workers.cancel_group(self, "estimate")
        self.query_one("#estimate", Static).update(_NO_ESTIMATE)

    def _show_preview(self, preview: Preview) -> None:
        shown = [name for name in preview.fields if name != "id"][:PREVIEW_FIELDS]
        more = len(preview.fields) - len(shown) - ("id" in preview.fields)
        self.query_one("#preview-summary", Static).update(
            f"{preview.format} · {preview.valid_count:,} items · "
            f"{preview.invalid_count:,} invalid · fields: {', '.join(preview.fields)}"
            + (f" (+{more} not shown)" if more > 0 else "")
        )
        table = self.query_one("#preview-items", DataTable)
        table.clear(columns=True)
        rows = [
            [item.id, *(_cell(item.fields.get(name)) for name in shown)] for item in preview.items
        ]
        for index, label in enumerate(("id", *shown)):
            widest = max((cell_len(cells[index]) for cells in rows), default=0)
            table.add_column(label, width=max(cell_len(label), widest))
        table.add_rows(rows)
        self._item = preview.items[0] if preview.items else None
        reasons = [f"line {bad.line}: {bad.reason}" for bad in preview.invalid[:3]]
        if preview.invalid_count > len(reasons):
            reasons.append(f"… {preview.invalid_count - len(reasons):,} more invalid lines")
        if preview.warning:
            reasons.insert(0, preview.warning)
        self.query_one("#invalid", Static).update("\n".join(reasons))

    @on(DataTable.RowHighlighted, "#preview-items")
    def _item_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.preview is not None and event.cursor_row < len(self.preview.items):
            self._item = self.preview.items[event.cursor_row]
            self._show_rendered()

    # -- prompt --------------------------------------------------------------------

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        if self.preview is None or self.query_one("#prompt", TextArea).text != default_template_for(
            self.preview.fields
        ):
            self._template_edited = True
        self._changed()

    @on(TextArea.Changed, "#system")
    def _system_changed(self) -> None:
        self._changed()

    def _show_rendered(self) -> None:
        text = self.query_one("#prompt", TextArea).text
        problem = self.query_one("#prompt-problem", Static)
        rendered = self.query_one("#rendered", Static)
        if not text.strip():
            problem.update("")
            rendered.update("(each item's default prompt)")
            return
        try:
            template = PromptTemplate.parse(text)
        except ConfigError as exc:
            problem.update(str(exc))
            rendered.update("")
            return
        fields = self.preview.fields if self.preview is not None else ()
        unknown = unknown_placeholders(template, fields) if self.preview is not None else []
        if unknown:
            names = ", ".join("{" + name + "}" for name in unknown)
            problem.update(f"unknown placeholder: {names} (fields: {', '.join(fields)})")
        else:
            problem.update("")
        if self._item is None:
            rendered.update("")
            return
        try:
            rendered.update(render_item(template, self._item.fields))
        except ValueError as exc:
            rendered.update(f"{self._item.id}: {exc}")

    # -- models, caps and the estimate ---------------------------------------------

    @on(SelectionList.SelectionHighlighted, "#models")
    def _model_highlighted(self, event: SelectionList.SelectionHighlighted[str]) -> None:
        self._show_model(event.selection.value)

    def _show_model(self, spec: str) -> None:
        choice = self._choices.get(spec)
        if choice is not None:
            self.query_one("#model-detail", Static).update(
                f"{mode_text(choice, self._mode(spec))}\n{choice.key}\n{choice.source}"
            )

    def _mode(self, spec: str) -> Mode:
        return self._modes.get(spec) or ("batch" if self._run_batch else "online")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``b`` switches the model under the cursor of the model list, and only there."""
        if action == "switch_mode":
            return self.focused is self.query_one("#models", SelectionList)
        return True

    def action_switch_mode(self) -> None:
        """The highlighted model goes online if it went batch, else batch."""
        picker = self.query_one("#models", ModelPicker)
        if not picker.option_count:
            return
        index = picker.highlighted = picker.highlighted or 0  # none yet: the first, shown
        spec = picker.get_option_at_index(index).value
        choice = self._choices.get(spec)
        if choice is None:
            return
        self._modes[spec] = "online" if self._mode(spec) == "batch" else "batch"
        picker.set_note(index, self._note(choice))
        self._show_model(spec)
        self._changed()

    @on(SelectionList.SelectedChanged, "#models")
    @on(Input.Changed, ".cap")
    @on(StepsEditor.Changed)
    def _changed(self) -> None:
        self._steps().first_models = tuple(self.query_one("#models", ModelPicker).selected)
        self._show_rendered()
        config = self.config(quiet=True)
        if config is not None and not self.problems():
            self._estimate(config)
        elif self.preview is None or self.problems():
            self.workers.cancel_group(self, "estimate")
            self.query_one("#estimate", Static).update(_NO_ESTIMATE)
        self.query_one("#start", Button).disabled = bool(self.problems())
        self.query_one("#try", Button).disabled = bool(self.problems())

    def problems(self) -> list[str]:
        """What the form says is wrong now, field by field."""
        return [
            text
            for selector in PROBLEMS
            if (text := str(self.query_one(selector, Static).content).strip())
        ]

    @work(group="estimate", exclusive=True, exit_on_error=False)
    async def _estimate(self, config: RunConfig) -> None:
        await asyncio.sleep(ESTIMATE_DELAY_S)
        box = self.query_one("#estimate", Static)
        try:
            found = await asyncio.to_thread(estimate, config, calibration=self._calibration)
        except (BatchdeckError, OSError) as exc:
            box.update(f"No estimate: {exc}")
            return
        box.update(estimate_text(found, config))

    def config(self, *, quiet: bool = False) -> RunConfig | None:
        """The run the form describes, or None with each problem shown by its field."""
        form = Form(
            format=self._format(),
            path=self.query_one("#path", Input).value,
            models=with_modes(self.query_one("#models", SelectionList).selected, self._modes),
            prompt=self.query_one("#prompt", TextArea).text,
            system=self.query_one("#system", TextArea).text,
            base_urls=self._added,
            steps=self._steps().drafts(),
            texts={
                field.name: self.query_one(f"#cap-{field.name}", Input).value
                for field in FORM_FIELDS
            },
        )
        outcome = read_form(form, quiet=quiet)
        if isinstance(outcome, RunConfig):
            self._run_batch = outcome.batch
        for field in FORM_FIELDS:
            self.query_one(f"#cap-{field.name}", Input).set_class(
                not isinstance(outcome, RunConfig)
                and any(problem.field == field.name for problem in outcome),
                "-invalid",
            )
        problems = [] if isinstance(outcome, RunConfig) else outcome
        on_path = next((p.message for p in problems if p.field == PATH_FIELD), "")
        if on_path:
            self.query_one("#path-problem", Static).update(on_path)
        below = next((p.message for p in problems if p.field not in (PATH_FIELD, STEPS_FIELD)), "")
        self.query_one("#caps-problem", Static).update(below)
        on_steps = next((p.message for p in problems if p.field == STEPS_FIELD), "")
        if isinstance(outcome, RunConfig) and outcome.steps and self.preview is not None:
            on_steps = missing_fields(outcome.steps, self.preview.fields)
        self._steps().show_problem(on_steps)
        return outcome if isinstance(outcome, RunConfig) and not on_steps else None

    # -- steps -----------------------------------------------------------------------

    @on(StepsEditor.Opened)
    def _pipeline_opened(self, event: StepsEditor.Opened) -> None:
        self._fill_steps(event.path, event.steps)

    @work(group="pipeline-fill", exclusive=True, exit_on_error=False)
    async def _fill_steps(self, path: str, steps: tuple[StepSpec, ...]) -> None:
        """Step 1 of a pipeline file into the form's own fields, the rest into Steps."""
        await self._models_ready.wait()
        assert self._priced is not None
        picker = self.query_one("#models", ModelPicker)
        offered = set(picker.specs())
        for spec in dict.fromkeys(model for step in steps for model in step.models):
            if spec not in offered:
                (choice,) = added_choices({spec: ""}, *self._priced)
                self._choices[spec] = choice
                picker.add_model(spec, self._note(choice), False)
                self._steps().offer([(spec, self._note(choice))])
        first = steps[0]
        self.query_one("#prompt", TextArea).load_text(first.prompt or "")
        self._template_edited = first.prompt is not None
        self.query_one("#system", TextArea).load_text(first.system or "")
        self.query_one(f"#cap-{SCHEMA_FIELD}", Input).value = ""  # step 1's is the file's
        picker.choose(first.models)
        await self._steps().fill(steps, path)
        self._changed()

    # -- start ---------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        config = self._valid_config()
        if config is None:
            return
        if self.query_one(TryPanel).running:
            self.notify("The try is still going: wait for it, or try again", severity="warning")
            return
        self.post_message(self.StartRequested(config, self._added, self._steps().opened))

    def _valid_config(self) -> RunConfig | None:
        config = self.config()
        problems = self.problems()
        if config is None or problems:
            first = f": {problems[0]}" if problems else ""
            self.notify(f"Fix the marked fields first{first}", severity="warning")
            return None
        return config

    # -- try -----------------------------------------------------------------------

    @on(Button.Pressed, "#try")
    def action_try(self) -> None:
        """Try the form's run on a few items, shown in the form's place."""
        config = self._valid_config()
        if config is None:
            return
        panel = self.query_one(TryPanel)
        self.query_one("#setup-main").display = False
        panel.display = True
        panel.begin(config)
        panel.query_one("#try-items").focus()

    @on(TryPanel.Closed)
    def _back_to_form(self) -> None:
        self.query_one(TryPanel).display = False
        self.query_one("#setup-main").display = True
        self.query_one("#prompt").focus()

    @on(TryPanel.Tried)
    def _tried(self, event: TryPanel.Tried) -> None:
        if event.calibration is not None:
            self._calibration = event.calibration.over(self._calibration)
            self._changed()


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
