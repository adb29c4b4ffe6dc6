"""Driving the whole app from a Pilot: fill the setup form, start, wait on workers and states.

Waits are on the app's own workers (``wait_for_complete``) or on the model's
state, polled with ``pilot.pause`` in a bounded loop: never a bare sleep.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Final

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input
from textual.worker import WorkerCancelled

from tui.app import BatchdeckApp
from tui.screens.setup import SetupScreen

TICKETS: Final = Path(__file__).resolve().parents[2] / "sample_data" / "tickets.jsonl"
TICKET_COUNT: Final = 60
SIZE: Final = (120, 36)
_LONG_LIVED: Final = frozenset({"_loader", "engine"})
"""Worker groups that do not end by themselves: the directory tree's loader, the engine."""


async def settle(app: BatchdeckApp, pilot: Pilot[None]) -> None:
    """Let every short-lived worker finish and the messages they posted be handled. A worker
    a newer one replaced (``exclusive``: an estimate typing moved on from) ends cancelled;
    the newer one is then waited for in turn."""
    await pilot.pause()
    while short := [worker for worker in app.workers if worker.group not in _LONG_LIVED]:
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(short)
        await pilot.pause()


async def until(pilot: Pilot[None], done: object, *, tries: int = 400, step: float = 0.02) -> None:
    """Pump the app until ``done()`` is true; fail after ``tries`` steps."""
    for _ in range(tries):
        if done():  # type: ignore[operator]
            return
        await pilot.pause(step)
    raise AssertionError(f"never happened: {done}")


def preview_laid_out(screen: SetupScreen) -> bool:
    """The preview table has measured what it holds: DataTable sizes its columns and rows
    when its message queue is idle, so until then a screenshot catches it mid-layout."""
    table = screen.query_one("#preview-items", DataTable)
    header = table.header_height if table.show_header and table.columns else 0
    width = sum(column.get_render_width(table) for column in table.columns.values())
    return table.virtual_size == (width, table.row_count + header)


async def set_up(
    app: BatchdeckApp, pilot: Pilot[None], *, path: Path = TICKETS, **caps: str
) -> SetupScreen:
    """Fill the setup form: the input file (previewed), then each ``cap-<name>`` field."""
    screen = app.screen
    assert isinstance(screen, SetupScreen), screen
    screen.query_one("#path", Input).value = str(path)
    screen.query_one("#path", Input).focus()
    await pilot.press("enter")
    await settle(app, pilot)
    for name, value in caps.items():
        screen.query_one(f"#cap-{name}", Input).value = value
    await settle(app, pilot)
    return screen


async def start(app: BatchdeckApp, pilot: Pilot[None], **caps: str) -> None:
    """Set up a run on ``sample_data/tickets.jsonl`` with ``caps`` and start it."""
    await set_up(app, pilot, **caps)
    await pilot.press("ctrl+s")
    await settle(app, pilot)


def finished(app: BatchdeckApp) -> bool:
    return not app.session.running and app.session.model.finished is not None


class Notices:
    """Every notification the app shows, as (severity, message), oldest first."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, str]] = []
        original = BatchdeckApp.notify

        def notify(app: BatchdeckApp, message: str, **kwargs: object) -> None:
            self.seen.append((str(kwargs.get("severity", "information")), message))
            original(app, message, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(BatchdeckApp, "notify", notify)
