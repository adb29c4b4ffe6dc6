"""One line naming the run and its state, coloured so a paused or failed run stands out.

A run another process executes shows as RUNNING ELSEWHERE with who runs it,
not as the outcome its log last recorded: what the app shows is that log as
it stood when opened, and the run goes on without it.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text

from tui.model import ModelState
from tui.widgets._panel import ModelPanel

_STATE_CLASS: dict[ModelState, str] = {
    "idle": "run-status--idle",
    "replaying": "run-status--running",
    "running": "run-status--running",
    "paused": "run-status--paused",
    "stopping": "run-status--paused",
    "finished": "run-status--finished",
    "stopped": "run-status--paused",
    "capped": "run-status--paused",
    "failed": "run-status--failed",
}


class RunStatus(ModelPanel):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-status--label",
        *_STATE_CLASS.values(),
    }

    DEFAULT_CSS = """
    RunStatus {
        height: 1;
        & > .run-status--label { color: $text-muted; }
        & > .run-status--idle { color: $text-muted; text-style: bold; }
        & > .run-status--running { color: $text-primary; text-style: bold; }
        & > .run-status--paused { color: $text-warning; text-style: bold; }
        & > .run-status--finished { color: $text-success; text-style: bold; }
        & > .run-status--failed { color: $text-error; text-style: bold; }
    }
    """

    _shown: tuple[object, ...] = ()

    def model_changed(self) -> None:
        model = self.model
        shown: tuple[object, ...] = (
            model.state,
            model.run_id,
            model.resumed,
            model.models,
            len(model.caps_reached),
            model.failure,
            model.elsewhere,
        )
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def render(self) -> RenderableType:
        model = self.model
        label = self.component_style("run-status--label")
        if model.elsewhere is not None:
            state = self.component_style("run-status--running")
            shown = "RUNNING ELSEWHERE"
        else:
            state = self.component_style(_STATE_CLASS[model.state])
            shown = model.state.upper()
        text = Text.assemble((f" {shown} ", state + Style(reverse=True)), no_wrap=True)
        if model.elsewhere is not None:
            text.append_text(Text.assemble(("  by ", label), model.elsewhere))
        if model.run_id is not None:
            text.append_text(Text.assemble(("  run ", label), model.run_id))
        if model.resumed:
            before = f" ({model.already_done:,} done before)" if model.already_done else ""
            text.append(f"  resumed{before}", label)
        if model.caps_reached:
            text.append_text(Text.assemble(("  cap reached: ", label), model.caps_reached[-1].cap))
        if model.failure is not None:
            text.append_text(Text.assemble(("  ", label), (model.failure, state)))
        if model.models:
            text.append_text(Text.assemble(("  models ", label), ", ".join(model.models)))
        return text
