"""Which reader a path needs: by extension, unless the user says otherwise.

The format is settled before anything is read, so a wrong extension is a
one-line error at start-up rather than a run full of ``invalid_input`` items.
Standard input has no extension; it is read as JSONL, the format meant for big
and piped inputs, unless ``--format`` says otherwise.
"""

from __future__ import annotations

import os
from typing import Final, Literal, get_args

from engine._errors import ConfigError, InputError

Format = Literal["jsonl", "csv", "txt", "json"]

FORMATS: Final[tuple[Format, ...]] = get_args(Format)

STDIN: Final = "-"
"""The path that means standard input."""

_BY_EXTENSION: Final[dict[str, Format]] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "txt",
    ".md": "txt",
    ".json": "json",
}

_ALIASES: Final[dict[str, Format]] = {"ndjson": "jsonl", "md": "txt", **{f: f for f in FORMATS}}

_ACCEPTED: Final = ", ".join(FORMATS)


def detect_format(path: str, fmt: str | None = None) -> Format:
    """The reader for ``path``: ``fmt`` when given (``--format``), else its extension.

    Raises ``ConfigError`` for an unknown ``fmt`` and ``InputError`` for an
    extension that names no format.
    """
    if fmt is not None:
        known = _ALIASES.get(fmt.lower())
        if known is None:
            raise ConfigError(f"unknown input format {fmt!r}: use one of {_ACCEPTED}")
        return known
    if path == STDIN:
        return "jsonl"
    detected = _BY_EXTENSION.get(os.path.splitext(path)[1].lower())
    if detected is None:
        raise InputError(
            f"cannot tell the format of {path} from its extension: "
            f"name it .jsonl, .ndjson, .csv, .txt, .md or .json, or pass --format ({_ACCEPTED})"
        )
    return detected
