"""Input readers: JSONL, CSV with a header, TXT/Markdown lines, a JSON array, or stdin.

Every reader is lazy and bounded: the file is read in binary, line by line (or
chunk by chunk for a JSON array) with a cap on any one line, so memory does not
grow with the file, and one bad line becomes one ``InvalidItem`` while the rest
still run. Modules: ``_format`` picks the reader, ``_source`` opens and checks the
input and cuts bounded lines, one module per format parses, and ``_assemble``
applies the id rules to all of them.

An item's ``line`` is its 1-based line in the file (for CSV the line its record
starts on, the header being line 1), or its 1-based position in a JSON array.
"""

from engine.readers._format import FORMATS, STDIN, Format, detect_format
from engine.readers._read import DEFAULT_MAX_LINE_BYTES, count_items, read_items
from engine.readers._source import check_input

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "FORMATS",
    "STDIN",
    "Format",
    "check_input",
    "count_items",
    "detect_format",
    "read_items",
]
