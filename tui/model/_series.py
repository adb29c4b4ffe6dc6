"""Per-second rates of a growing total, kept in a ring buffer for sparklines.

The model is fed thousands of events a second but a sparkline has one bar per
second, so the rate is not computed per event: whoever drains the events
calls ``sample(now, total)`` a few times a second and each whole second that
has passed since the last point becomes one point. Time comes in as an
argument, never from a clock read here, so tests decide what "now" is.
"""

from __future__ import annotations

from collections import deque


class RateSeries:
    """``points`` holds the increase of a total per second (times ``scale``), oldest first."""

    def __init__(self, *, size: int, scale: float = 1.0) -> None:
        self._points: deque[float] = deque(maxlen=size)
        self._scale = scale
        self._next: float | None = None
        self._last_total = 0.0

    def start(self, now: float, total: float) -> None:
        self._points.clear()
        self._next = now + 1.0
        self._last_total = total

    def sample(self, now: float, total: float) -> bool:
        """Close every whole second up to ``now``; True when new points were added."""
        if self._next is None or now < self._next:
            return False
        seconds = int(now - self._next) + 1
        rate = (total - self._last_total) / seconds * self._scale
        self._points.extend([rate] * min(seconds, self._points.maxlen or seconds))
        self._next += seconds
        self._last_total = total
        return True

    @property
    def points(self) -> list[float]:
        return list(self._points)

    def recent(self, seconds: int) -> float | None:
        """Mean of the last ``seconds`` points, or None before the first one."""
        if not self._points:
            return None
        window = list(self._points)[-seconds:]
        return sum(window) / len(window)
