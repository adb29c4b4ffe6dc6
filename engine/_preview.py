"""What the setup screen shows of an input before a run: its first items, fields and bad lines.

It reads the whole file (in the caller's worker thread), because the count and
the invalid lines are only known at the end; it keeps only the first items and
the first invalid lines, so memory stays flat on a million-line file.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine._items import InvalidItem, Item
from engine.readers import check_input, detect_format, read_items

FIRST_ITEMS = 20
FIRST_INVALID = 100


@dataclass(frozen=True, slots=True)
class Preview:
    path: str
    format: str
    items: tuple[Item, ...]
    """The first valid items."""
    invalid: tuple[InvalidItem, ...]
    """The first invalid lines, each with its reason."""
    fields: tuple[str, ...]
    """Field names of the first valid item, in order (what a template can use)."""
    valid_count: int
    invalid_count: int
    warning: str | None


def preview_input(
    path: str, fmt: str | None = None, *, items: int = FIRST_ITEMS, invalid: int = FIRST_INVALID
) -> Preview:
    """Raises InputError/ConfigError for an input that cannot be read at all (a directory, a
    missing or empty file: what a run would refuse, in the same words)."""
    check_input(path)
    form = detect_format(path, fmt)
    warnings: list[str] = []
    first: list[Item] = []
    bad: list[InvalidItem] = []
    valid_count = invalid_count = 0
    for entry in read_items(path, fmt, on_warning=warnings.append):
        if isinstance(entry, Item):
            valid_count += 1
            if len(first) < items:
                first.append(entry)
        else:
            invalid_count += 1
            if len(bad) < invalid:
                bad.append(entry)
    return Preview(
        path=path,
        format=form,
        items=tuple(first),
        invalid=tuple(bad),
        fields=tuple(first[0].fields) if first else (),
        valid_count=valid_count,
        invalid_count=invalid_count,
        warning=warnings[0] if warnings else None,
    )
