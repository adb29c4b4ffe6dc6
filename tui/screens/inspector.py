"""One item's whole story: the prompt it was sent, the answer, the cost, every attempt.

The screen is built from an ``ItemResult`` and the run's ``RunConfig`` and does
no I/O. The prompt is not stored in the log, so it is rendered again here with
the engine's own ``sent_prompt``, by the rules the engine applied: an edited
prompt (``prompt_override``) wins over the item's own ``prompt`` field, which
wins over the run's template; a pipeline step's lane renders its step's template
with the answers of the item's earlier lanes (``earlier``: their records) that were
in when each execution of it started, so a lane run again after an earlier step
changed its answer shows each prompt it was sent, by attempt. A prompt that cannot
be rendered shows the engine's one-line reason instead.

Every attempt is shown, across executions: a pair that failed and was retried
has one record per execution (``find_results``), and the attempts are numbered
on from one record to the next, so a retry that worked reads "#1-#3 failed,
#4 ok", never "#1 ok". While the screen is open it follows the pair's row in
the run's ``ItemStore``: when the row changes and is finished again, the
records are read anew and the screen redrawn, so what it shows is never older
than the table under it.

Retrying is the app's job: the screen posts ``RetryRequested`` and closes.
Editing the prompt happens in place, with the rendered prompt above the editor
following every keystroke, so what ctrl+s sends is what the user just read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Label, Static, TextArea

from engine import ItemResult, RunConfig, default_template_for, sent_prompt, split_lane
from engine.providers import default_timeout, is_local
from tui import _format
from tui.model import ItemStore

FOLLOW_EVERY_S: Final = 0.5
"""How often an open inspector checks whether its item changed (a retry finished)."""
_OWN_PROMPT: Final = "prompt"
"""The item field that carries an item's own prompt (see ``engine._template``)."""


def template_for(result: ItemResult, config: RunConfig) -> tuple[str, str]:
    """The template the item's prompt came from (what the editor starts with), and whose it is."""
    if result.prompt_override is not None:
        return result.prompt_override, "edited for a retry"
    spec = step_of(result, config)
    if spec is not None and spec.prompt is not None:
        return spec.prompt, f"step {spec.name}'s template"
    own = result.fields.get(_OWN_PROMPT)
    if isinstance(own, str) and own.strip():
        return own, "the item's own"
    return config.prompt or default_template_for(list(result.fields)), "the run's template"


def step_of(result: ItemResult, config: RunConfig) -> Any:
    """The pipeline step the result's lane belongs to (its ``StepSpec``), or None."""
    name = split_lane(result.model)[0]
    return next((spec for spec in config.steps if spec.name == name), None) if name else None


def answers_for(
    record: ItemResult, earlier: Mapping[str, Sequence[ItemResult]]
) -> dict[str, ItemResult]:
    """The answer of each earlier lane that ``record``'s execution read: the latest ok one
    that had finished when it started (the latest ok one when the log does not say when)."""
    started = record.started_at
    read: dict[str, ItemResult] = {}
    for lane, records in earlier.items():
        ok = [r for r in records if r.status == "ok"]
        before = [
            r for r in ok if started is None or r.finished_at is None or r.finished_at <= started
        ]
        if before or ok:
            read[lane] = (before or ok)[-1]
    return read


def attempt_spans(records: Sequence[ItemResult]) -> list[str]:
    """Each record's attempts as ``attempt_rows`` numbers them: ``#1-#3``, ``#4``."""
    spans, before = [], 0
    for result in records:
        made = max(result.attempts, len(result.attempt_errors) + (result.status == "ok"), 1)
        spans.append(f"#{before + 1}" + (f"-#{before + made}" if made > 1 else ""))
        before += made
    return spans


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def attempt_rows(records: Sequence[ItemResult]) -> Iterator[tuple[str, str, str]]:
    """(label, text, class) per attempt of every record (oldest first), numbered on from one
    record to the next; each record's outcome follows if no attempt row says it."""
    before = 0
    for number, result in enumerate(records):
        retry = " (retry)" if number else ""
        errors = list(result.attempt_errors)
        for attempt, error in enumerate(errors, before + 1):
            yield (
                f"#{attempt}{retry if attempt == before + 1 else ''}",
                (f"{error.kind}: {error.message}"),
                "-failed",
            )
        made = max(result.attempts, len(errors) + (result.status == "ok"))
        last = f"#{before + max(made, 1)}{retry if not errors else ''}"
        final = result.error
        if result.status == "ok":
            reason = f" ({result.finish_reason})" if result.finish_reason else ""
            yield last, f"ok{reason}", "-ok"
        elif final is not None and (not errors or errors[-1] != final):
            label = f"skipped{retry}" if result.status == "skipped" else last
            yield label, f"{final.kind}: {final.message}", f"-{result.status}"
        elif not errors:
            yield f"-{retry}", result.status, f"-{result.status}"
        before += max(made, 1)


def _pairs(grid_id: str, rows: Iterator[tuple[str, str, str]]) -> Grid:
    """A two-column grid of muted labels and wrapping values."""
    cells: list[Static] = []
    for label, text, classes in rows:
        cells.append(Label(label, classes="key", markup=False))
        cells.append(Static(text, classes=f"value {classes}".strip(), markup=False))
    return Grid(*cells, id=grid_id, classes="pairs")


class InspectorScreen(Screen[None]):
    """Everything known about one (item, model) result; ``r`` / ``e`` ask the app to retry it."""

    CSS_PATH = "screens.tcss"
    AUTO_FOCUS = "#inspector-body"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="inspector.back"),
        Binding("escape", "cancel_edit", "Cancel edit", id="inspector.cancel_edit"),
        Binding("r", "retry", "Retry", id="inspector.retry"),
        Binding("e", "edit", "Edit prompt & retry", id="inspector.edit"),
        Binding("m", "retry_longer", "Retry with 2x max tokens", id="inspector.retry_longer"),
        Binding("ctrl+s", "confirm_edit", "Retry with this prompt", id="inspector.confirm_edit"),
    ]

    editing = var(False, bindings=True, init=False)
    """The prompt editor is open (``r`` and ``e`` rest, ctrl+s and escape act on the edit)."""

    class RetryRequested(Message):
        """The user asked to run this (model, id) pair again, with this prompt."""

        def __init__(
            self, model: str, id: str, prompt_override: str | None, max_tokens: int | None = None
        ) -> None:
            super().__init__()
            self.model = model
            self.id = id
            self.prompt_override = prompt_override
            """A template to use instead of the run's and the item's own; None: the usual prompt."""
            self.max_tokens = max_tokens
            """A larger output limit for a truncated answer; None: the run's."""

        @property
        def key(self) -> tuple[str, str]:
            return (self.model, self.id)

    def __init__(
        self,
        result: ItemResult,
        *,
        config: RunConfig,
        records: Sequence[ItemResult] = (),
        earlier: Mapping[str, Sequence[ItemResult]] | None = None,
        store: ItemStore | None = None,
        reload: Callable[[], Awaitable[list[ItemResult]]] | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        """``records``: every result record of the pair, oldest first (``result`` is the
        last); ``earlier``: for a pipeline's lane, every record of the item's lanes of the
        steps before (what its prompt read), by lane; ``store`` and ``reload``: the run's
        rows to follow, and how to read the pair's records again when its row changes."""
        super().__init__(name=name, id=id)
        self.config = config
        self._earlier = earlier or {}
        self._store = store
        self._reload = reload
        self._show(list(records) or [result])

    def _show(self, records: list[ItemResult]) -> None:
        self.records = records
        self.result = result = records[-1]
        self.template, self._template_source = template_for(result, self.config)
        position = None if self._store is None else self._store.position(result.model, result.id)
        self._position = position
        self._row_version = (
            None if position is None or self._store is None else self._store.version_of(position)
        )

    def compose(self) -> ComposeResult:
        result = self.result
        yield Static(
            f"{result.id} · {result.model} · {result.status}",
            id="inspector-title",
            classes=f"-{result.status}",
            markup=False,
        )
        with VerticalScroll(id="inspector-body"):
            yield self._section("Prompt", Static(id="prompt", markup=False))
            for span, earlier_prompt in self._earlier_prompts():
                yield self._section(
                    f"Prompt sent to {span}",
                    Static(earlier_prompt, classes="earlier", markup=False),
                )
            spec = step_of(result, self.config)
            system = self.config.system if spec is None else spec.system
            yield self._section(
                "System prompt", Static(system or "(none)", id="system", markup=False)
            )
            yield self._section(
                "Response",
                Static(
                    result.output if result.output is not None else "(no output)",
                    id="response",
                    markup=False,
                ),
            )
            if result.parsed is not None:
                parsed = json.dumps(result.parsed, indent=2, ensure_ascii=False, default=str)
                yield self._section("Parsed output", Static(parsed, id="parsed", markup=False))
            yield self._section("Call", _pairs("call", self._call_rows()))
            yield self._section("Attempts", _pairs("attempts", attempt_rows(self.records)))
            fields = ((name, _value_text(value), "") for name, value in result.fields.items())
            yield self._section("Input fields", _pairs("fields", fields))
        with Vertical(id="editor"):
            yield Label("Edit the prompt template · ctrl+s retries with it · escape cancels")
            yield TextArea(id="prompt-editor", soft_wrap=True)
            yield Static(id="editor-problem", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._show_prompt(self.template, edited=self.result.prompt_override is not None)
        if self._position is not None and self._reload is not None:
            self.set_interval(FOLLOW_EVERY_S, self._follow)

    def _follow(self) -> None:
        """Read the pair's records again once its row moved and is finished."""
        store, position = self._store, self._position
        assert store is not None and position is not None
        if self.editing or store.version_of(position) == self._row_version:
            return
        if store.status_of(position) in ("running", "retrying"):
            return
        self._row_version = store.version_of(position)
        self._read_again()

    @work(group="inspector-follow", exclusive=True, exit_on_error=False)
    async def _read_again(self) -> None:
        assert self._reload is not None
        records = await self._reload()
        if records and not self.editing:
            version = self._row_version
            self._show(records)
            self._row_version = version
            await self.recompose()
            self._show_prompt(self.template, edited=self.result.prompt_override is not None)

    @staticmethod
    def _section(title: str, body: Static | Grid) -> Vertical:
        section = Vertical(body, classes="section")
        section.border_title = title
        return section

    def _timeout_text(self) -> str:
        """How long one call of this model may wait for its answer, and why that long."""
        config, model = self.config, self.result.model
        if config.timeout is not None:
            return f"{config.timeout:g} s a call (--timeout)"
        provider, where = model.partition(":")[0], config.base_url_of(model)
        whose = "a local server's default" if is_local(provider, where) else "the default"
        return f"{default_timeout(provider, where):g} s a call ({whose})"

    def _call_rows(self) -> Iterator[tuple[str, str, str]]:
        result = self.result
        usage = result.usage
        yield "line", str(result.line), ""
        yield "input tokens", f"{usage.input_tokens:,}", ""
        yield "output tokens", f"{usage.output_tokens:,}", ""
        yield "cached tokens", f"{usage.cached_tokens:,}", ""
        cost = "unknown (no price)" if result.unpriced else f"${result.cost_usd:.6f}"
        if usage.unknown:
            cost += " (usage unknown: charged its reservation)"
        if result.cached:
            cost += f" (from the response cache: ${result.saved_usd:.6f} not spent)"
        yield "cost", cost, ""
        yield "latency", f"{_format.latency(result.latency_ms)} ({result.latency_ms:,.0f} ms)", ""
        yield "timeout", self._timeout_text(), ""
        yield "finish reason", result.finish_reason or "-", ""
        yield "simulated", "yes" if result.simulated else "no", ""
        yield "prompt", self._template_source, ""

    def _prompt_of(self, record: ItemResult, template: str | None = None) -> str:
        """The prompt ``record``'s execution sent (or ``template``, an edit, would send);
        ``ValueError`` with the reason it cannot be rendered."""
        earlier = answers_for(record, self._earlier)
        return sent_prompt(self.config, record.model, record.fields, earlier, template=template)

    def _earlier_prompts(self) -> Iterator[tuple[str, str]]:
        """(attempts, prompt) of the earlier executions whose prompt was not the last one's
        (an earlier step answered again in between)."""
        if not self._earlier or len(self.records) < 2:
            return
        last = self.records[-1]
        try:
            shown = self._prompt_of(last, last.prompt_override)
        except ValueError:
            return
        spans = attempt_spans(self.records)
        for span, record in zip(spans[:-1], self.records[:-1], strict=True):
            try:
                sent = self._prompt_of(record, record.prompt_override)
            except ValueError:
                continue
            if sent != shown:
                yield span, sent

    def _show_prompt(self, template: str, *, edited: bool) -> str | None:
        """Render ``template`` into the prompt section; the reason it cannot be, or None."""
        prompt = self.query_one("#prompt", Static)
        error = self.result.error
        if not edited and error is not None and error.kind == "upstream":
            prompt.update(f"not sent: the item stopped at {error.message}")
            prompt.remove_class("-problem")
            return None
        try:
            text = self._prompt_of(self.result, template if edited else None)
        except ValueError as exc:
            prompt.update(f"cannot render the prompt: {exc}")
            prompt.add_class("-problem")
            return str(exc)
        prompt.update(text)
        prompt.remove_class("-problem")
        return None

    # -- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("back", "retry", "edit"):
            return not self.editing
        if action == "retry_longer":
            return not self.editing and self.result.status == "truncated"
        if action in ("cancel_edit", "confirm_edit"):
            return self.editing
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_cancel_edit(self) -> None:
        self.editing = False

    def action_retry(self) -> None:
        """Run the item again with the prompt it had (an earlier edit stays)."""
        self._request(self.result.prompt_override)

    def action_retry_longer(self) -> None:
        """Run a truncated item again with twice the output limit it was cut off at."""
        limit = self.result.max_tokens or self.config.max_tokens
        self._request(self.result.prompt_override, max_tokens=2 * limit)

    def action_edit(self) -> None:
        editor = self.query_one("#prompt-editor", TextArea)
        editor.load_text(self.template)
        editor.move_cursor(editor.document.end)
        self.editing = True
        editor.focus()

    def action_confirm_edit(self) -> None:
        template = self.query_one("#prompt-editor", TextArea).text
        if self._show_prompt(template, edited=True) is None:
            self._request(template)

    def _request(self, prompt_override: str | None, *, max_tokens: int | None = None) -> None:
        result = self.result
        self.post_message(self.RetryRequested(result.model, result.id, prompt_override, max_tokens))
        self.dismiss()

    # -- editing -----------------------------------------------------------------

    def watch_editing(self, editing: bool) -> None:
        self.query_one("#editor").display = editing
        section = self.query_one("#prompt").parent
        assert isinstance(section, Vertical)
        section.border_title = "Prompt · edited, not sent yet" if editing else "Prompt"
        if editing:
            self.query_one("#inspector-body", VerticalScroll).scroll_home(animate=False)
        else:
            self.query_one("#editor-problem", Static).update("")
            self._show_prompt(self.template, edited=self.result.prompt_override is not None)
            self.query_one("#inspector-body").focus()

    @on(TextArea.Changed, "#prompt-editor")
    def _preview_edit(self, event: TextArea.Changed) -> None:
        if not self.editing:
            return
        problem = self._show_prompt(event.text_area.text, edited=True)
        self.query_one("#editor-problem", Static).update(
            "" if problem is None else f"cannot retry with this prompt: {problem}"
        )
