"""The rules about ids, applied once to every format's records.

An item's id is its ``id`` field (a string, or an integer made a string). A
record without one is numbered by its line, and the input gets a single warning
for it; a bare text item (a TXT line, a string in a JSON array) is always
numbered that way, silently, since it has nowhere to hold an id. The generated
id is put first in the item's fields, so ``{id}`` works in every template. A
number taken that way can clash with an explicit id: the refusal then says which
item was numbered (the lines numbered are kept in a bitmap, 1 bit a line).

Every id yielded, an ``InvalidItem``'s included, is unique: the checkpoint log
keys results by id. A bad record (malformed, duplicate id, blank id) therefore
gets the id ``line-<n>`` (``element-<n>`` in a JSON array), suffixed ``~2``,
``~3``... in the unlikely case that a real item already took it. Seen ids live
in an ``IdSet``: a Python set of a million ids would cost ~100 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engine._errors import InputError
from engine._idset import IdSet
from engine._items import InvalidItem, Item
from engine.readers._records import Bad, Record, type_name

_ID = "id"
_TEXT = "text"
_SHOWN_ID_CHARS = 60
_LINE_DIGITS = 18
"""Digits a line number can have: an id with more is no line's number."""


def assemble(
    records: Iterable[Record],
    *,
    name: str,
    label: str,
    on_warning: Callable[[str], None] | None,
) -> Iterator[Item | InvalidItem]:
    """Items and invalid items from ``records``; ``InputError`` if there were none at all."""
    seen = IdSet()
    numbered = _Lines()
    warn = on_warning
    yielded = False
    fields: dict[str, Any]
    for line, payload in records:
        yielded = True
        by_line = False
        if type(payload) is dict:
            raw_id = payload.get(_ID)
            if type(raw_id) is str and raw_id and not raw_id.isspace():
                item_id, fields = raw_id, payload
            elif type(raw_id) is int:
                item_id, fields = str(raw_id), payload
            elif raw_id is None and _ID not in payload:
                item_id, by_line = str(line), True
                fields = {_ID: item_id, **payload}
                if warn is not None:
                    warn(
                        f"{name}: items without an 'id' field (the first on {label} {line}) "
                        f"use their {label} number as id"
                    )
                    warn = None
            else:
                yield _invalid(seen, label, line, _bad_id(raw_id))
                continue
        elif isinstance(payload, Bad):
            yield _invalid(seen, label, line, payload.reason)
            continue
        else:
            item_id, by_line = str(line), True
            fields = {_ID: item_id, _TEXT: payload}
        if seen.add(item_id):
            if by_line:
                numbered.add(line)
            yield Item(item_id, line, fields)
        else:
            reason = _duplicate(item_id, line, by_line, numbered, name=name, label=label)
            yield _invalid(seen, label, line, reason)
    if not yielded:
        raise InputError(f"no items in {name}")


def _invalid(seen: IdSet, label: str, line: int, reason: str) -> InvalidItem:
    base = f"{label}-{line}"
    item_id, copy = base, 1
    while not seen.add(item_id):
        copy += 1
        item_id = f"{base}~{copy}"
    return InvalidItem(item_id, line, reason)


def _duplicate(
    item_id: str, line: int, by_line: bool, numbered: _Lines, *, name: str, label: str
) -> str:
    """Why ``item_id`` on ``line`` (numbered ``by_line``) is refused: an earlier item has it,
    maybe as the number of its line (one of the ``numbered`` lines)."""
    reason = f"duplicate id {_shown(item_id)}"
    if by_line:  # this one was numbered: an earlier item has that id
        return (
            f"{reason}: {_at(name, label, line)} has no 'id' and was numbered by its "
            f"{label}, which an earlier item has as its id"
        )
    digits = len(item_id) <= _LINE_DIGITS and item_id.isascii() and item_id.isdigit()
    first = int(item_id) if digits else 0  # int() of thousands of digits would raise
    if 0 < first < line and str(first) == item_id and numbered.has(first):
        return (
            f"{reason} ({_at(name, label, line)}): {_at(name, label, first)} has no 'id' "
            f"and was numbered {item_id} by its {label}"
        )
    return reason


def _at(name: str, label: str, number: int) -> str:
    """Where an item is: ``file:line``, or ``file element n`` in a JSON array."""
    return f"{name}:{number}" if label == "line" else f"{name} {label} {number}"


class _Lines:
    """A set of line numbers as a bitmap: 125 KB for a million lines, where a set of
    ints would take tens of MB."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, line: int) -> None:
        byte = line >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits) + 4096))
        self._bits[byte] |= 1 << (line & 7)

    def has(self, line: int) -> bool:
        byte = line >> 3
        return byte < len(self._bits) and bool(self._bits[byte] >> (line & 7) & 1)


def _bad_id(raw_id: Any) -> str:
    if isinstance(raw_id, str):
        return "blank id"
    return f"id must be a string or an integer, not {type_name(raw_id)}"


def _shown(item_id: str) -> str:
    if len(item_id) <= _SHOWN_ID_CHARS:
        return repr(item_id)
    return repr(item_id[:_SHOWN_ID_CHARS]) + "..."
