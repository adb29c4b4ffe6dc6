"""The Textual app, kept thin: themes, settings, app-wide keys, and the first screen.

Screens and widgets live in ``tui/screens`` and ``tui/widgets``; the app only
wires them to what they read (a ``RunModel`` fed by an ``EventBuffer``) and to
the settings file. ``make_app`` builds it the same way for the command line
and for tests, which pass their own model, buffer, clock and settings file.

The command palette reaches every action: besides Textual's own commands it
offers each binding active on the current screen, by its description.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme

from themes import DEFAULT_THEME, THEMES
from tui.model import EventBuffer, RunModel
from tui.screens.help import HelpScreen
from tui.screens.run import RunScreen
from tui.settings import Settings, load_settings, save_settings, settings_path


class BatchdeckApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "batchdeck"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
    ]

    def __init__(
        self,
        *,
        model: RunModel,
        events: EventBuffer,
        settings: Settings,
        settings_file: Path,
        settings_warning: str | None = None,
    ) -> None:
        super().__init__()
        for theme in THEMES:
            self.register_theme(theme)
        self.settings = settings
        self.settings_file = settings_file
        self._startup_warnings = [settings_warning] if settings_warning else []
        if settings.theme in self.available_themes:
            self.theme = settings.theme
        else:
            self.theme = DEFAULT_THEME
            self._startup_warnings.append(
                f"Theme {settings.theme!r} is not available; using {DEFAULT_THEME}."
            )
        self.model = model
        self.events = events

    def get_default_screen(self) -> Screen[None]:
        return RunScreen(self.model, self.events)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        for warning in self._startup_warnings:
            self.notify(warning, severity="warning")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen.active_bindings))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        offered: set[tuple[int, str]] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            key = (id(active.node), binding.action)
            if binding.system or not binding.description or key in offered:
                continue
            if binding.action in ("command_palette", "quit"):
                continue
            offered.add(key)
            yield SystemCommand(
                binding.description,
                binding.tooltip or f"{binding.description} ({self.get_key_display(binding)})",
                partial(self.run_action, binding.action, active.node),
            )

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name == self.settings.theme:
            return
        self.settings = self.settings.model_copy(update={"theme": theme.name})
        try:
            save_settings(self.settings, self.settings_file)
        except OSError as exc:
            self.notify(f"Could not save the theme choice: {exc}", severity="error")


def run_app() -> int:
    """Run the app in this terminal until the user quits; the process exit code."""
    app = make_app()
    app.run()
    return app.return_code or 0


def make_app(
    *,
    model: RunModel | None = None,
    events: EventBuffer | None = None,
    settings_file: Path | None = None,
) -> BatchdeckApp:
    """The app, with its settings loaded from ``settings_file`` (default: the config dir)."""
    path = settings_path() if settings_file is None else settings_file
    loaded = load_settings(path)
    return BatchdeckApp(
        model=RunModel() if model is None else model,
        events=EventBuffer() if events is None else events,
        settings=loaded.settings,
        settings_file=path,
        settings_warning=loaded.warning,
    )
