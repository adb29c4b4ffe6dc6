"""Fitting text into fixed-width columns, for the Line API lists (the item table, the failures).

Both lists draw one row per line from plain strings, in columns sized once per
layout: the id and model columns as wide as the widest value within bounds, the
rest fixed. A cell is then padded or cut to exactly its width so that columns
line up whatever the text; a cut is marked with an ellipsis. Most text is ASCII,
where a character is a cell and ``str`` methods are several times faster than
measuring cells, which matters at a few thousand cells per frame.
"""

from __future__ import annotations

from typing import Final

from rich.cells import cell_len, set_cell_size

ID_WIDTH: Final = (4, 24)
"""Bounds (narrowest, widest) of an item id column."""
MODEL_WIDTH: Final = (5, 28)
"""Bounds of a model column."""
ATTEMPTS_WIDTH: Final = 3
_ELLIPSIS: Final = "…"


def column_width(widest: int, bounds: tuple[int, int]) -> int:
    """The width of a column whose widest value takes ``widest`` cells, kept within ``bounds``."""
    low, high = bounds
    return min(max(widest, low), high)


def fit(text: str, width: int, *, right: bool = False) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, marking a cut with an ellipsis."""
    if text.isascii():
        if len(text) <= width:
            return text.rjust(width) if right else text.ljust(width)
        return text[: width - 1] + _ELLIPSIS if width > 0 else ""
    if cell_len(text) <= width:
        padded = set_cell_size(text, width)
        return " " * (width - cell_len(text)) + text if right else padded
    return set_cell_size(text, width - 1) + _ELLIPSIS if width > 0 else ""
