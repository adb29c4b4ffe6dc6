"""The header values providers use to say how long to wait and how much is left.

Three providers, three clocks: OpenAI writes Go durations (``6m0s``, ``12ms``),
Anthropic RFC 3339 instants, and ``Retry-After`` is either seconds or an HTTP
date (RFC 9110), with OpenAI's ``retry-after-ms`` taking precedence when present.
Everything here turns them into seconds from now, or ``None`` for a value that
is absent or unreadable: a malformed header must never fail a call that
otherwise succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_DURATION = re.compile(rf"(?:{_GO_PART.pattern})+")


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration (``1m30.5s``, ``12ms``) or a bare number of seconds."""
    text = text.strip()
    if _GO_DURATION.fullmatch(text):
        return sum(float(n) * _GO_UNITS[unit] for n, unit in _GO_PART.findall(text))
    try:
        return float(text)
    except ValueError:
        return None


def seconds_until(instant: str, *, now: datetime | None = None) -> float | None:
    """Seconds from ``now`` to an RFC 3339 instant (never negative)."""
    try:
        when = datetime.fromisoformat(instant.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The server's wait in seconds: ``retry-after-ms``, else ``retry-after`` seconds or date."""
    millis = header_float(headers, "retry-after-ms")
    if millis is not None and millis >= 0:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = header_float(headers, "retry-after")
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
