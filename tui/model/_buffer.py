"""The TUI's engine subscriber: it only appends, so the engine never waits on the UI.

The engine calls its subscribers synchronously, up to ~10,000 times a second.
Folding an event into the model, let alone repainting, at that rate would
slow the run down; appending to a list costs ~50 ns. The screen drains the
list from its refresh timer and folds the whole batch at once.
"""

from __future__ import annotations

from engine import Event


class EventBuffer:
    """Pass an instance as an engine subscriber; call ``drain()`` from the UI's timer."""

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def drain(self) -> list[Event]:
        """Every event received since the last drain, oldest first."""
        events = self._events
        self._events = []
        return events
