"""What a reader yields: a runnable ``Item`` or an ``InvalidItem`` that names its line.

Readers never raise for one bad line: the bad line becomes an ``InvalidItem`` and
ends as an ``invalid_input`` failure, so the good items still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    line: int
    """1-based line (JSONL/TXT) or row (CSV, JSON array element) in the source."""
    fields: Mapping[str, Any]
    """Every original field, ``id``/``prompt``/``context`` included, in source order."""

    @property
    def prompt(self) -> str | None:
        """The item's own prompt, which overrides the run's template."""
        value = self.fields.get("prompt")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class InvalidItem:
    id: str
    line: int
    reason: str
    """One line: what is wrong, e.g. ``malformed JSON: unexpected character at column 14``."""
