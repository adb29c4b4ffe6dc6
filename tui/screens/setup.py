"""Set up a run: the input file, the prompt, the models, the caps, a pre-flight estimate, Start.

Everything that reads a file (the input's preview, the estimate over the whole
input, the key store and price table) runs in a thread inside an async worker
of its own group, so typing never waits on the disk; the estimate is debounced
(it waits ``ESTIMATE_DELAY_S`` and a newer change cancels it, ``exclusive``).
What the user gets wrong (a file that cannot be read, a value that is not a
number, a template with an unknown placeholder) is one line next to the field,
from the engine's own checks (``make_config``, ``PromptTemplate.parse``,
``unknown_placeholders``), never a traceback.

The screen does not create the run: Start posts ``StartRequested`` with a
validated ``RunConfig`` and the app starts it (and remembers the file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from rich.text import Text
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
    SelectionList,
    Static,
    TextArea,
)
from textual.widgets.selection_list import Selection

from engine import (
    DEFAULT_MODEL,
    BatchdeckError,
    ConfigError,
    Estimate,
    Item,
    Preview,
    PriceTable,
    PromptTemplate,
    RunConfig,
    default_template_for,
    estimate,
    load_schema,
    make_config,
    preview_input,
    render_item,
    unknown_placeholders,
)
from engine.keys import KeyStatus, key_status
from engine.providers import PRESETS
from tui import _format
from tui.settings import Settings
from tui.widgets.input_tree import InputTree

ESTIMATE_DELAY_S: Final = 0.3
LISTED_PROVIDERS: Final = ("openai", "anthropic", "gemini")
"""Hosted providers whose priced models the picker lists (simulate is always listed)."""
PREVIEW_FIELDS: Final = 4
"""Columns of the preview table besides the id: enough to recognise the items."""
CELL_CHARS: Final = 40

Kind = Literal["float", "int", "text"]


@dataclass(frozen=True, slots=True)
class CapField:
    name: str
    """The ``RunConfig`` field (``retries`` and ``sim_*`` are mapped in ``config_values``)."""
    label: str
    kind: Kind


CAP_FIELDS: Final[tuple[CapField, ...]] = (
    CapField("max_cost", "Max run $", "float"),
    CapField("max_item_cost", "Max item $", "float"),
    CapField("workers", "Workers", "int"),
    CapField("rpm", "RPM", "float"),
    CapField("tpm", "TPM", "float"),
    CapField("time_limit", "Time limit s", "float"),
    CapField("max_items", "Max items", "int"),
    CapField("retries", "Retries", "int"),
    CapField("max_tokens", "Max tokens", "int"),
    CapField("temperature", "Temperature", "float"),
    CapField("schema_ref", "Schema", "text"),
    CapField("sim_latency_ms", "Sim latency ms", "float"),
    CapField("sim_failure_rate", "Sim failures", "float"),
)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    spec: str
    price: str
    key: str
    """Where the provider's key was found (masked), or that there is none."""
    has_key: bool
    per_million: float | None = None
    """Input plus output price per million tokens: what "cheapest" compares."""


def model_choices(prices: PriceTable, keys: Sequence[KeyStatus]) -> list[ModelChoice]:
    """simulate first, then every priced model of the listed providers, with key and price."""
    by_provider = {status.provider: status for status in keys}
    specs = [DEFAULT_MODEL] + sorted(
        spec for spec in prices.models if spec.partition(":")[0] in LISTED_PROVIDERS
    )
    choices = []
    for spec in specs:
        provider = spec.partition(":")[0]
        price = prices.lookup(spec)
        shown = (
            "price unknown" if price is None else f"${price.input:g} / ${price.output:g} per Mtok"
        )
        status = by_provider.get(provider)
        if provider not in PRESETS:
            key, has_key = "offline, no key needed", True
        elif status is not None and status.present:
            key, has_key = f"key: {status.source} {status.masked}", True
        else:
            key, has_key = "no key", False
        per_million = None if price is None else price.input + price.output
        choices.append(ModelChoice(spec, shown, key, has_key, per_million))
    return choices


def default_models(settings: Settings, choices: Sequence[ModelChoice]) -> tuple[str, ...]:
    """The saved models still offered; else the cheapest priced model with a key; else simulate."""
    offered = {choice.spec for choice in choices}
    saved = tuple(spec for spec in settings.models if spec in offered)
    if saved:
        return saved
    keyed = [
        (c.per_million, c.spec)
        for c in choices
        if c.has_key and c.spec != DEFAULT_MODEL and c.per_million is not None
    ]
    return (min(keyed)[1],) if keyed else (DEFAULT_MODEL,)


def parse_value(text: str, kind: Kind) -> Any:
    """The field's value, None when blank; ``ValueError`` with a short reason."""
    text = text.strip()
    if not text:
        return None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number, please") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("a number, please") from None
    return text


def config_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's parsed values as ``make_config`` keywords (blanks mean the engine default)."""
    fields = {name: value for name, value in values.items() if value is not None}
    out: dict[str, Any] = {}
    sim: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "retries":
            out["retry"] = {"retries": value}
        elif name == "sim_latency_ms":
            sim["latency_ms"] = value
        elif name == "sim_failure_rate":
            sim["failure_rate"] = value
        else:
            out[name] = value
    if sim:
        out["sim"] = sim
    return out


def _estimate_text(found: Estimate, config: RunConfig) -> str:
    low, high = found.cost_low, found.cost_high
    cost = (
        "cost unknown"
        if low is None or high is None
        else f"{_format.money(low)} – {_format.money(high)}"
    )
    cap = "" if config.max_cost is None else f" (cap {_format.money(config.max_cost)})"
    invalid = f", {found.invalid:,} invalid" if found.invalid else ""
    return (
        f"{found.items:,} items{invalid} · {found.calls:,} calls\n"
        f"~{_format.count(found.input_tokens)} input tokens, "
        f"≤{_format.count(found.output_tokens_max)} output\n"
        f"{cost}{cap}\n"
        f"~{_format.duration(found.seconds)} at {config.workers} workers "
        f"(bound by {found.bound_by}, {_format.latency(found.latency_s * 1000)} a call)"
    )


class SetupScreen(Screen[None]):
    """The form for a new run; posts ``StartRequested`` with a valid ``RunConfig``."""

    AUTO_FOCUS = "#path"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start", id="setup.start"),
        Binding("ctrl+r", "app.history", "History", id="setup.history"),
        Binding("escape", "app.show_run", "Run screen", id="setup.run"),
    ]

    class StartRequested(Message):
        """The user asked to start a run with ``config``."""

        def __init__(self, config: RunConfig) -> None:
            super().__init__()
            self.config = config

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

    def compose(self) -> ComposeResult:
        with Horizontal(id="setup-main"):
            with Vertical(id="setup-input", classes="pane") as pane:
                pane.border_title = "Input"
                yield Input(placeholder="path/to/items.jsonl ⏎", id="path")
                yield Static(id="path-problem", classes="problem", markup=False)
                recent = OptionList(*self.settings.recent_files, id="recent")
                recent.border_title = "Recent"
                yield recent
                yield InputTree(self.root, id="tree")
            with Vertical(id="setup-prompt", classes="pane") as pane:
                pane.border_title = "Preview & prompt"
                yield Static("Pick a file to preview it.", id="preview-summary", markup=False)
                yield DataTable(cursor_type="row", zebra_stripes=True, id="preview-items")
                yield Static(id="invalid", classes="problem", markup=False)
                yield Label("Prompt template ({field} fills in an item's field)")
                yield TextArea(id="prompt", soft_wrap=True)
                yield Label("System prompt")
                yield TextArea(id="system", soft_wrap=True)
                yield Static(id="prompt-problem", classes="problem", markup=False)
                rendered = Static(id="rendered", markup=False)
                rendered.border_title = "Rendered prompt"
                yield rendered
            with VerticalScroll(id="setup-run", classes="pane") as pane:
                pane.border_title = "Models & caps"
                yield SelectionList[str](id="models")
                yield Static(id="model-detail", markup=False)
                with Grid(id="caps"):
                    for field in CAP_FIELDS:
                        yield Label(field.label, classes="cap-label")
                        yield Input(
                            self._initial(field),
                            placeholder=self._placeholder(field),
                            id=f"cap-{field.name}",
                            classes="cap",
                        )
                yield Static(id="caps-problem", classes="problem", markup=False)
                estimate_box = Static("Estimate: waiting for a file.", id="estimate", markup=False)
                estimate_box.border_title = "Pre-flight estimate"
                yield estimate_box
                yield Button("Start (ctrl+s)", id="start", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self._load_models()
        if self.settings.recent_files:
            self.query_one("#path", Input).value = self.settings.recent_files[0]
            self._load_preview()

    # -- defaults ------------------------------------------------------------------

    def _initial(self, field: CapField) -> str:
        value = getattr(self.settings.caps, field.name, None)
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    @staticmethod
    def _placeholder(field: CapField) -> str:
        defaults = RunConfig.model_fields
        if field.name in defaults:
            default = defaults[field.name].default
            return "none" if default is None else str(default)
        if field.name == "retries":
            return str(RunConfig.model_fields["retry"].default.retries)
        sim = RunConfig.model_fields["sim"].default
        return f"{sim.latency_ms:g}" if field.name == "sim_latency_ms" else f"{sim.failure_rate:g}"

    @work(group="models", exit_on_error=False)
    async def _load_models(self) -> None:
        prices, keys = await asyncio.gather(
            asyncio.to_thread(PriceTable.load), asyncio.to_thread(key_status)
        )
        choices = model_choices(prices, keys)
        self._choices = {choice.spec: choice for choice in choices}
        chosen = default_models(self.settings, choices)
        picker = self.query_one("#models", SelectionList)
        picker.add_options(
            [
                Selection(
                    Text.assemble(choice.spec, ("" if choice.has_key else "  no key", "dim")),
                    choice.spec,
                    choice.spec in chosen,
                )
                for choice in choices
            ]
        )
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

    def _load_preview(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if path:
            self._preview(path)

    @work(group="preview", exclusive=True, exit_on_error=False)
    async def _preview(self, path: str) -> None:
        problem = self.query_one("#path-problem", Static)
        try:
            preview = await asyncio.to_thread(preview_input, path)
        except (BatchdeckError, OSError) as exc:
            problem.update(str(exc))
            return
        problem.update("")
        self.preview = preview
        self._show_preview(preview)
        prompt = self.query_one("#prompt", TextArea)
        if not self._template_edited or not prompt.text.strip():
            prompt.load_text(default_template_for(preview.fields))
            self._template_edited = False
        self._changed()

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
        table.add_columns("id", *shown)
        for item in preview.items:
            cells = [item.id, *(_cell(item.fields.get(name)) for name in shown)]
            table.add_row(*cells)
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
        choice = self._choices.get(event.selection.value)
        if choice is not None:
            self.query_one("#model-detail", Static).update(
                f"{choice.spec}: {choice.price}\n{choice.key}"
            )

    @on(SelectionList.SelectedChanged, "#models")
    @on(Input.Changed, ".cap")
    def _changed(self) -> None:
        self._show_rendered()
        config = self.config(quiet=True)
        if config is not None:
            self._estimate(config)

    @work(group="estimate", exclusive=True, exit_on_error=False)
    async def _estimate(self, config: RunConfig) -> None:
        await asyncio.sleep(ESTIMATE_DELAY_S)
        box = self.query_one("#estimate", Static)
        try:
            found = await asyncio.to_thread(estimate, config)
        except (BatchdeckError, OSError) as exc:
            box.update(f"No estimate: {exc}")
            return
        box.update(_estimate_text(found, config))

    def config(self, *, quiet: bool = False) -> RunConfig | None:
        """The run the form describes, or None with each problem shown by its field."""
        for field in CAP_FIELDS:
            self.query_one(f"#cap-{field.name}", Input).remove_class("-invalid")
        caps_problem = self.query_one("#caps-problem", Static)
        path = self.query_one("#path", Input).value.strip()
        models = tuple(self.query_one("#models", SelectionList).selected)
        values: dict[str, Any] = {}
        for field in CAP_FIELDS:
            box = self.query_one(f"#cap-{field.name}", Input)
            try:
                values[field.name] = parse_value(box.value, field.kind)
            except ValueError as exc:
                box.add_class("-invalid")
                caps_problem.update(f"{field.label}: {exc}")
                return None
        if not path or not models:
            caps_problem.update("" if quiet or models else "Pick at least one model.")
            if not quiet and not path:
                self.query_one("#path-problem", Static).update("Pick an input file.")
            return None
        prompt = self.query_one("#prompt", TextArea).text
        system = self.query_one("#system", TextArea).text
        options = config_values(values)
        try:
            if options.get("schema_ref"):
                options["output_schema"] = load_schema(options["schema_ref"])
            config = make_config(
                input=path,
                prompt=prompt if prompt.strip() else None,
                system=system if system.strip() else None,
                models=models,
                **options,
            )
        except ConfigError as exc:
            self._show_config_problem(str(exc))
            return None
        caps_problem.update("")
        return config

    def _show_config_problem(self, message: str) -> None:
        """Mark the field a ``ConfigError`` names (``workers: ...``) and say why below the form."""
        where = message.partition(":")[0].split(".")[0]
        names = {"retry": "retries", "sim": "sim_latency_ms"}
        name = names.get(where, where)
        if any(field.name == name for field in CAP_FIELDS):
            self.query_one(f"#cap-{name}", Input).add_class("-invalid")
        self.query_one("#caps-problem", Static).update(message)

    # -- start ---------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        config = self.config()
        if config is None:
            self.notify("Fix the marked fields first.", severity="warning")
            return
        self.post_message(self.StartRequested(config))


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
