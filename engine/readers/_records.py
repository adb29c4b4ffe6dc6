"""What the format parsers hand to the assembler: a line number and a payload.

A payload is a ``dict`` (a record that may carry an ``id``), a ``str`` (a bare
text item: a TXT line or a string in a JSON array, which never has an id) or a
``Bad`` (the line cannot become an item, and says why). Parsers know syntax;
the assembler alone knows the rules about ids, so they are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class Bad:
    reason: str


Payload: TypeAlias = dict[str, Any] | str | Bad
Record: TypeAlias = tuple[int, Payload]


def decode(raw: bytes) -> str | Bad:
    """``raw`` as text, or a ``Bad`` naming its first byte that is not UTF-8."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        return Bad(f"invalid UTF-8 at byte {exc.start + 1}")


def too_long(max_line_bytes: int) -> Bad:
    return Bad(f"line longer than {max_line_bytes} bytes")


def type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
