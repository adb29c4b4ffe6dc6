"""One line naming the run and its state, coloured so a paused or failed run stands out."""

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
        )
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def render(self) -> RenderableType:
        model = self.model
        label = self.component_style("run-status--label")
        state = self.component_style(_STATE_CLASS[model.state])
        text = Text.assemble((f" {model.state.upper()} ", state + Style(reverse=True)))
        if model.run_id is not None:
            text.append_text(Text.assemble(("  run ", label), model.run_id))
        if model.resumed:
            text.append("  resumed", label)
        if model.models:
            text.append_text(Text.assemble(("  models ", label), ", ".join(model.models)))
        if model.caps_reached:
            text.append_text(Text.assemble(("  cap reached: ", label), model.caps_reached[-1].cap))
        if model.failure is not None:
            text.append_text(Text.assemble(("  ", label), (model.failure, state)))
        return text
