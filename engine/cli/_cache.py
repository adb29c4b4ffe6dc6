"""``batchdeck cache stats|clear [--older-than D]``: what the response cache holds, and emptying it.

Its own module so the run commands stay about runs; the store itself is ``engine._cache``.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from datetime import UTC, datetime

from engine._cache import cache_stats, clear_cache
from engine._errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def add_cache_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cache = commands.add_parser("cache", help="the response cache: what it holds, clearing it")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    actions.add_parser("stats", help="answers held, size on disk, where")
    clear = actions.add_parser("clear", help="drop stored answers")
    clear.add_argument(
        "--older-than",
        metavar="D",
        type=age_s,
        help="only answers stored more than D ago: 30d, 12h, 90m, 45s (a bare number is days)",
    )


def age_s(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a bare number of days, in seconds."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 30d, 12h or 90m")
    return float(match[1]) * _UNITS[match[2] or "d"]


def cmd_cache(args: argparse.Namespace) -> int:
    try:
        if args.cache_command == "stats":
            _print_stats()
        else:
            gone = clear_cache(args.older_than)
            print(f"dropped {gone:,} answers from the response cache", file=sys.stderr)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(
            f"the response cache cannot be read ({exc}): `batchdeck cache clear` removes it"
        ) from None
    return 0


def _print_stats() -> None:
    stats = cache_stats()
    print(f"path      {stats.path}")
    print(f"answers   {stats.answers:,}")
    print(f"on disk   {stats.file_bytes / (1 << 20):,.1f} MiB")
    if stats.oldest is not None and stats.newest is not None:
        print(f"stored    {_when(stats.oldest)} to {_when(stats.newest)}")


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
