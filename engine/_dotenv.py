"""Reading a ``.env`` file: the subset of the format people actually write.

``KEY=VALUE`` lines, an optional ``export`` in front, ``#`` comments on their
own line or after an unquoted value, and values in single quotes (taken
literally) or double quotes (with ``\\n``, ``\\"`` and ``\\\\`` escapes). No
variable expansion, no multi-line values: a key is one line, and a parser we
own is one dependency fewer on the path that handles secrets.
"""

from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(r"\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<value>.*)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)")


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables a ``.env`` text defines; lines that are not assignments are skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.fullmatch(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        found[match["name"]] = _value(match["value"].strip())
    return found


def read_dotenv(path: Path) -> dict[str, str]:
    """``parse_dotenv`` of ``path``, or nothing when there is no such file."""
    try:
        return parse_dotenv(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _value(raw: str) -> str:
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end > 0:
            return raw[1:end]
    elif raw.startswith('"'):
        closing = _closing_quote(raw)
        if closing is not None:
            return _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[0]), raw[1:closing])
    comment = re.search(r"\s#", raw)
    return (raw[: comment.start()] if comment else raw).strip()


def _closing_quote(raw: str) -> int | None:
    index = 1
    while index < len(raw):
        if raw[index] == "\\":
            index += 2
            continue
        if raw[index] == '"':
            return index
        index += 1
    return None
