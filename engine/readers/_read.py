"""``read_items`` and ``count_items``: a format's parser, then the id rules.

``read_items`` checks the path and the format at once, so those errors come
before a run starts, and returns a plain generator that opens the file on its
first item and closes it when exhausted or closed. The engine drains it from a
worker thread in chunks; nothing here blocks on anything but the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO, Final

from engine._errors import InputError
from engine._items import InvalidItem, Item
from engine.readers import _csv, _json_array, _jsonl, _txt
from engine.readers._assemble import assemble
from engine.readers._format import STDIN, Format, detect_format
from engine.readers._records import Record
from engine.readers._source import check_input, count_lines, display_name, open_input

DEFAULT_MAX_LINE_BYTES: Final = 1_000_000


def read_items(
    path: str,
    fmt: str | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_warning: Callable[[str], None] | None = None,
) -> Generator[Item | InvalidItem]:
    """Every item of ``path`` (``-`` for stdin) in order, a bad one as an ``InvalidItem``.

    Raises ``InputError``/``ConfigError`` at once for an input or format that
    cannot work, and ``InputError("no items in ...")`` from the generator when
    the input holds not a single item, good or bad. ``on_warning`` gets at most
    one line: that items without ids were numbered by line.
    """
    form = detect_format(path, fmt)
    check_input(path)
    return _items(path, form, max_line_bytes, on_warning)


def count_items(
    path: str, fmt: str | None = None, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> int | None:
    """How many items and invalid items ``read_items`` will yield, or None for stdin.

    Cheaper than reading (JSONL and TXT lines are not parsed, JSON elements are
    cut out but not parsed), for progress totals and estimates; duplicate and
    blank ids still count, as they end as invalid items too. The one miss: a TXT
    line of nothing but non-ASCII spaces counts, though reading skips it.
    """
    form = detect_format(path, fmt)
    if path == STDIN:
        return None
    check_input(path)
    name = display_name(path)
    with open_input(path) as stream:
        if form == "csv":
            return _csv.count(stream, max_line_bytes=max_line_bytes)
        if form == "json":
            return _json_array.count(stream, max_line_bytes=max_line_bytes, name=name)
        return count_lines(stream, max_line_bytes=max_line_bytes)


def _items(
    path: str,
    form: Format,
    max_line_bytes: int,
    on_warning: Callable[[str], None] | None,
) -> Generator[Item | InvalidItem]:
    name = display_name(path)
    label = "element" if form == "json" else "line"
    with open_input(path) as stream:
        records = _records(stream, form, max_line_bytes, name)
        items = assemble(records, name=name, label=label, on_warning=on_warning)
        if path == STDIN:
            yield from items
            return
        # A file rewritten or appended to while it is read would mix two inputs in one run.
        start = _version(stream)
        for count, item in enumerate(items, 1):
            if not count % CHANGE_CHECK_EVERY and _version(stream) != start:
                raise _changed(name)
            yield item
        if _version(stream) != start:
            raise _changed(name)


CHANGE_CHECK_EVERY: Final = 64
"""Items read between two looks at whether the input changed: one ``fstat`` (~1 us), so
at most this many items of a changed file are read before the run stops."""


def _version(stream: BinaryIO) -> tuple[int, int]:
    """The open file's size and modification time: what a rewrite or an append changes."""
    info = os.fstat(stream.fileno())
    return info.st_size, info.st_mtime_ns


def _changed(name: str) -> InputError:
    return InputError(
        f"{name} changed while the run read it: results so far are kept; resume with --force "
        "to go on with the new content"
    )


def _records(stream: BinaryIO, form: Format, max_line_bytes: int, name: str) -> Iterator[Record]:
    if form == "jsonl":
        return _jsonl.records(stream, max_line_bytes=max_line_bytes)
    if form == "txt":
        return _txt.records(stream, max_line_bytes=max_line_bytes)
    if form == "csv":
        return _csv.records(stream, max_line_bytes=max_line_bytes, name=name)
    return _json_array.records(stream, max_line_bytes=max_line_bytes, name=name)
