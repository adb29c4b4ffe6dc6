"""``--json``: what a command prints for scripts, one way for every command.

orjson turns dataclasses (events, summaries, key statuses) into objects as they are, and
anything else it does not know (paths, enums) into its string, so a command hands over
the values it would print and never builds a second, hand-kept shape of them.
"""

from __future__ import annotations

import sys

import orjson


def print_json(value: object) -> None:
    """``value`` (dataclasses, lists, paths) as indented JSON on stdout."""
    data = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    sys.stdout.write(data.decode() + "\n")
