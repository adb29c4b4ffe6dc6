"""The Textual app, kept thin: themes, settings, app-wide keys, and which screen shows.

Screens and widgets live in ``tui/screens`` and ``tui/widgets``; the engine is
driven only through the ``RunSession``. The app is the hub the screens post to:
a setup asks to start a run, History to open, resume, export or compare one, the
inspector and the failures screen to retry items; the app acts through the
session and switches screens. ``make_app`` builds it the same way for the
command line and for tests, which pass their own model, buffer and settings file.

Setup, Run and History replace each other on top of Textual's blank default
screen (which cannot be switched away from); the run screen is installed under
``run`` so leaving it for History or Setup keeps it, and a new run replaces it.

One handler sees every worker that fails (``on_worker_state_changed``): an
engine refusal (``BatchdeckError``) becomes the run's failure, a file that
cannot be read a notification; anything else is a bug and is raised.

The command palette reaches every action: besides Textual's own commands it
offers each binding active on the current screen, by its description, once,
with its key and where it acts as the line under it (not the description again).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar, Final, Literal

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState

from engine import BatchdeckError, Run, next_steps, settings_of
from themes import DEFAULT_THEME, THEMES
from tui.model import EventBuffer, RunModel
from tui.screens.compare import CompareScreen
from tui.screens.export import ExportScreen
from tui.screens.failures import FailuresScreen
from tui.screens.help import HelpScreen, where
from tui.screens.history import HistoryScreen
from tui.screens.inspector import InspectorScreen
from tui.screens.quit import QuitChoice, QuitScreen
from tui.screens.run import RunScreen
from tui.screens.setup import SetupScreen
from tui.session import ENGINE_GROUP, REPLAY_GROUP, RunSession, refusal
from tui.settings import Settings, load_settings, save_settings, settings_path

FirstScreen = Literal["setup", "run", "history"]
_RUN_SCREEN: Final = "run"
_BUSY: Final = "A run is going: stop it first (s on the run screen)."


class BatchdeckApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "batchdeck"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
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
        first: FirstScreen = "run",
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
        self.session = RunSession(self, model=model, events=events)
        self._first: FirstScreen = first
        self._quit_when_idle = False

    @property
    def model(self) -> RunModel:
        return self.session.model

    @property
    def events(self) -> EventBuffer:
        return self.session.events

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        for warning in self._startup_warnings:
            self.notify(warning, severity="warning")
        self.install_screen(RunScreen(self.session), _RUN_SCREEN)
        if self._first == "setup":
            self.push_screen(self._setup_screen())
        elif self._first == "history":
            self.push_screen(HistoryScreen())
        else:
            self.push_screen(_RUN_SCREEN)

    # -- navigation ----------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen.active_bindings))

    async def action_new_run(self) -> None:
        await self._replace_top(self._setup_screen())

    async def action_history(self) -> None:
        await self._replace_top(HistoryScreen(current=self.model.run_id))

    async def action_show_run(self) -> None:
        await self._replace_top(self.get_screen(_RUN_SCREEN))

    async def _replace_top(self, screen: Screen[None]) -> None:
        """Close any screen pushed over Setup, Run or History, then show ``screen`` instead."""
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        if self.screen is not screen:
            await self.switch_screen(screen)

    def _setup_screen(self) -> SetupScreen:
        return SetupScreen(self.settings)

    async def _show_new_run(self) -> None:
        """Replace the run screen with one for the session's new model, and show it."""
        old = self.get_screen(_RUN_SCREEN)
        fresh = RunScreen(self.session)
        await self._replace_top(fresh)
        self.uninstall_screen(old)
        await old.remove()
        self.install_screen(fresh, _RUN_SCREEN)

    # -- requests from screens -----------------------------------------------------

    @on(SetupScreen.StartRequested)
    async def _start(self, event: SetupScreen.StartRequested) -> None:
        if self._busy():
            return
        try:
            self.session.start(event.config)
        except BatchdeckError as exc:
            self.notify(str(exc), title="Cannot start", severity="error")
            return
        chosen = self.settings.with_recent_file(event.config.input)
        caps = settings_of(event.config)
        steps = event.config.steps
        remembered = {
            "models": steps[0].models if steps else event.config.models,  # step 1's
            "caps": caps,
            "added_models": event.added,
            "pipeline_file": event.pipeline or self.settings.pipeline_file,
        }
        self._remember(chosen.model_copy(update=remembered))
        await self._show_new_run()

    @on(HistoryScreen.OpenRequested)
    async def _open(self, event: HistoryScreen.OpenRequested) -> None:
        if self._busy():
            return
        try:
            self.session.open(event.summary)
        except BatchdeckError as exc:
            self.notify(str(exc), title="Cannot open", severity="error")
            return
        await self._show_new_run()

    @on(HistoryScreen.ResumeRequested)
    async def _resume(self, event: HistoryScreen.ResumeRequested) -> None:
        if self._busy():
            return
        try:
            run = Run.open(event.summary.run_dir).for_resume()
        except BatchdeckError as exc:
            self.notify(refusal(exc), title="Cannot resume", severity="error")
            return
        self.session.resume(run)
        await self._show_new_run()

    @on(HistoryScreen.ExportRequested)
    def _export(self, event: HistoryScreen.ExportRequested) -> None:
        run = self._past_run(event.summary.run_dir, "export")
        if run is not None:
            self.push_screen(ExportScreen(run))

    @on(HistoryScreen.CompareRequested)
    def _compare(self, event: HistoryScreen.CompareRequested) -> None:
        run = self._past_run(event.summary.run_dir, "compare")
        if run is None:
            return
        current = self.session.run
        shown = current is not None and current.run_id == run.run_id
        self.push_screen(CompareScreen(run, self.session.comparison if shown else None))

    def _past_run(self, run_dir: Path, doing: str) -> Run | None:
        """The run in ``run_dir``, or None once the user is told why it cannot be opened."""
        try:
            return Run.open(run_dir)
        except BatchdeckError as exc:
            self.notify(str(exc), title=f"Cannot {doing}", severity="error")
            return None

    @on(InspectorScreen.RetryRequested)
    def _retry_one(self, event: InspectorScreen.RetryRequested) -> None:
        self._retry([event.key], prompt_override=event.prompt_override, max_tokens=event.max_tokens)

    @on(FailuresScreen.RetryRequested)
    def _retry_many(self, event: FailuresScreen.RetryRequested) -> None:
        self._retry(event.keys)

    @on(FailuresScreen.InspectRequested)
    async def _inspect(self, event: FailuresScreen.InspectRequested) -> None:
        run, result = self.session.run, event.result
        if run is None:
            return
        reload = partial(self.session.records, result.model, result.id)
        await self.push_screen(
            InspectorScreen(
                result,
                config=run.config,
                records=await reload(),
                earlier=await self.session.earlier_records(result.model, result.id),
                store=self.session.model.store,
                reload=reload,
            )
        )

    def _retry(
        self,
        keys: Iterable[tuple[str, str]],
        *,
        prompt_override: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if self._busy():
            return
        wanted = list(keys)
        self.session.retry(wanted, prompt_override=prompt_override, max_tokens=max_tokens)
        plural = "" if len(wanted) == 1 else "s"
        self.notify(f"Retrying {len(wanted):,} item{plural}.")

    def _busy(self) -> bool:
        """Whether a run is going, which a new run, an opened one or a retry would replace;
        if so the user is told to stop it first."""
        if self.session.running:
            self.notify(_BUSY, severity="warning")
        return self.session.running

    # -- quitting ------------------------------------------------------------------

    async def action_quit(self) -> None:
        if not self.session.running:
            self.exit()
            return
        if not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(self.model.open_batch_jobs), self._quit_chosen)

    def _quit_chosen(self, choice: QuitChoice | None) -> None:
        if choice == "stop":
            self.session.stop()
        elif choice == "abort":
            self.session.abort()
        else:
            return
        self._quit_when_idle = True
        if not self.session.running:
            self.exit()
        else:
            self.notify("Stopping… the app closes when calls in flight are logged.")

    def next_steps(self) -> str | None:
        """What to type to resume and to export the run the app showed last, once it ended
        (events the run screen had not folded yet are folded first: the app may close on
        the engine's last event, before a frame drew it)."""
        model = self.model
        model.apply_all(self.events.drain())
        if model.run_id is None or model.finished is None or model.elsewhere is not None:
            return None
        jobs = model.finished.batch_jobs_left
        waiting = (
            f"{jobs:,} batch job{'s' if jobs != 1 else ''} left running at the provider. "
            if jobs
            else ""
        )
        return f"batchdeck: run {model.run_id} {model.finished.state}. {waiting}" + next_steps(
            model.run_id, model.finished
        )

    # -- the one worker-error handler ----------------------------------------------

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, BatchdeckError) and worker.group in (ENGINE_GROUP, REPLAY_GROUP):
                self.session.failed(error)
            elif isinstance(error, (BatchdeckError, OSError)):
                self.notify(str(error), severity="error")
            else:
                raise error  # type: ignore[misc]
        if worker.group == ENGINE_GROUP and worker.is_finished and self._quit_when_idle:
            self.exit()

    # -- settings ------------------------------------------------------------------

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
                binding.tooltip or f"key {self.get_key_display(binding)} · {where(active.node)}",
                partial(self.run_action, binding.action, active.node),
            )

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name != self.settings.theme:
            self._remember(self.settings.model_copy(update={"theme": theme.name}))

    def _remember(self, settings: Settings) -> None:
        self.settings = settings
        try:
            save_settings(settings, self.settings_file)
        except OSError as exc:
            self.notify(f"Could not save the settings: {exc}", severity="error")


def run_app() -> int:
    """Run the app in this terminal until the user quits; the process exit code. The last
    run's next steps (how to resume it, how to export it) stay in the terminal after."""
    app = make_app(first="setup")
    app.run()
    steps = app.next_steps()
    if steps:
        print(steps)
    return app.return_code or 0


def make_app(
    *,
    model: RunModel | None = None,
    events: EventBuffer | None = None,
    settings_file: Path | None = None,
    first: FirstScreen = "run",
) -> BatchdeckApp:
    """The app, with its settings loaded from ``settings_file`` (default: the config dir).

    ``first`` is the screen it opens on: ``batchdeck`` opens Setup; tests of the
    run screen open it on a model they fed.
    """
    path = settings_path() if settings_file is None else settings_file
    loaded = load_settings(path)
    return BatchdeckApp(
        model=RunModel() if model is None else model,
        events=EventBuffer() if events is None else events,
        settings=loaded.settings,
        settings_file=path,
        settings_warning=loaded.warning,
        first=first,
    )
