"""The highlighted row of a ``DataTable`` by its key, and keeping it highlighted when the
table is filled again: the Compare screen and Setup's try redraw their item tables
whole as the run goes, and the user's place must not jump back to the top."""

from __future__ import annotations

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


def highlighted_key(table: DataTable[object]) -> str | None:
    """The key of the row under the cursor, or None when there is none."""
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def move_to_key(table: DataTable[object], key: str | None) -> None:
    """Put the cursor back on the row ``key`` if the table still has it."""
    if key is None:
        return
    try:
        table.move_cursor(row=table.get_row_index(key), animate=False)
    except RowDoesNotExist:
        pass
