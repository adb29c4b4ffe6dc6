"""Add a model from any provider, at any base URL: how a local server reaches the app.

The picker above it lists priced models of the hosted APIs; a model on Ollama,
llama.cpp's server, vLLM or LM Studio has no price to list it by and lives at
a URL only the user knows. So this is a small form of its own, folded away
until wanted: every preset (``engine.providers.PRESETS``), the model's name, its
base URL (blank: the preset's, shown as the placeholder), "List models" to ask
the server which it has loaded (``GET /v1/models``, in a worker: a server that
does not answer costs a line, never a frozen screen), and Add, which posts
``ModelAdder.Added`` for the screen to put in its picker. It checks only what
it can see (a name, a URL that parses); the run checks the rest when it starts.
"""

from __future__ import annotations

from typing import Final

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Collapsible, Input, OptionList, Select, Static

from engine import BatchdeckError
from engine.providers import PRESETS, base_url_for, check_base_url, list_models

FIRST_PRESET: Final = "ollama"
"""Selected at first: the local server most users have."""


class ModelAdder(Vertical):
    """Pick a preset, a model and a base URL; ``Added`` when the user adds it."""

    DEFAULT_CSS = """
    ModelAdder { height: auto; }
    ModelAdder Collapsible { padding: 0; border: none; }
    ModelAdder Contents { padding: 0 0 0 1; height: auto; }
    ModelAdder #add-provider { width: 100%; }
    ModelAdder Input { margin-top: 1; }
    ModelAdder Horizontal { height: auto; margin-top: 1; }
    ModelAdder Button { width: 1fr; margin-right: 1; }
    ModelAdder #add-status { height: auto; color: $text-muted; }
    ModelAdder #add-found { height: auto; max-height: 6; border: none; background: $surface; }
    ModelAdder #add-found.-empty { display: none; }
    """

    class Added(Message):
        """The user added ``spec`` (``provider:model``) at ``base_url`` (None: the preset's)."""

        def __init__(self, spec: str, base_url: str | None) -> None:
            super().__init__()
            self.spec = spec
            self.base_url = base_url

    def compose(self) -> ComposeResult:
        with Collapsible(title="Add model: local/URL", collapsed=True):
            yield Select(
                [(name, name) for name in PRESETS],
                value=FIRST_PRESET,
                allow_blank=False,
                compact=True,
                id="add-provider",
            )
            yield Input(placeholder="model, e.g. llama3.2:3b", id="add-model")
            yield Input(placeholder=self._url_hint(FIRST_PRESET), id="add-url")
            with Horizontal():
                yield Button("List models", id="add-probe", compact=True)
                yield Button("Add", id="add-button", variant="primary", compact=True)
            yield Static(id="add-status", markup=False)
            yield OptionList(id="add-found", classes="-empty")

    def open(self) -> None:
        """Unfold the form."""
        self.query_one(Collapsible).collapsed = False

    @property
    def provider(self) -> str:
        return str(self.query_one("#add-provider", Select).value)

    @property
    def base_url(self) -> str | None:
        return self.query_one("#add-url", Input).value.strip() or None

    def _url_hint(self, provider: str) -> str:
        default = base_url_for(provider)
        if default is None:
            return "base URL (required)"
        return default  # what a blank URL means

    def _say(self, text: str) -> None:
        self.query_one("#add-status", Static).update(text)

    @on(Select.Changed, "#add-provider")
    def _provider_changed(self) -> None:
        self.query_one("#add-url", Input).placeholder = self._url_hint(self.provider)
        self._show_found([])
        self._say("")

    # -- asking the server ---------------------------------------------------------

    @on(Button.Pressed, "#add-probe")
    def _probe_pressed(self) -> None:
        self._say(f"Asking {self.base_url or base_url_for(self.provider) or self.provider} …")
        self._probe(self.provider, self.base_url)

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def _probe(self, provider: str, base_url: str | None) -> None:
        try:
            found = await list_models(provider, base_url)
        except BatchdeckError as exc:
            self._show_found([])
            self._say(f"Could not list models: {exc}")
            return
        self._show_found(found)
        if found:
            self._say(f"{len(found)} model{'s' * (len(found) != 1)}: pick one, then Add")
        else:
            self._say("The server lists no models.")

    def _show_found(self, models: list[str]) -> None:
        found = self.query_one("#add-found", OptionList)
        found.clear_options()
        found.add_options(models)
        found.set_class(not models, "-empty")

    @on(OptionList.OptionSelected, "#add-found")
    def _found_picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#add-model", Input).value = str(event.option.prompt)
        self.query_one("#add-button", Button).focus()

    # -- adding --------------------------------------------------------------------

    @on(Button.Pressed, "#add-button")
    @on(Input.Submitted, "#add-model, #add-url")
    def _add(self) -> None:
        model = self.query_one("#add-model", Input).value.strip()
        if not model:
            self._say("Name the model first (List models shows what the server has).")
            return
        base_url = self.base_url
        try:
            if base_url is not None:
                check_base_url(base_url)
            elif base_url_for(self.provider) is None:
                raise BatchdeckError(f"{self.provider} needs a base URL")
        except BatchdeckError as exc:
            self._say(str(exc))
            return
        spec = f"{self.provider}:{model}"
        self._say(f"Added {spec}.")
        self.post_message(self.Added(spec, base_url))
