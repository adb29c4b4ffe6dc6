"""batchdeck's headless command line.

``main`` is the only place an exception meets the user: a ``BatchdeckError``
or an ``OSError`` the places that know more did not turn into one (a full or
read-only disk) prints as one line (``batchdeck: error: ...``) with exit code
2, anything else as one line naming the bug, never a traceback (set
``BATCHDECK_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine._errors import BatchdeckError
from engine._secrets import install_redaction, redact
from engine.cli._args import build_parser
from engine.cli._commands import COMMANDS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (see _complete)
        _complete(parser)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    install_redaction()
    try:
        return COMMANDS[args.command](args)
    except BaseException as exc:
        return _report(exc)


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit (argcomplete's protocol).

    Bash/zsh: ``eval "$(register-python-argcomplete batchdeck)"``; fish:
    ``register-python-argcomplete --shell fish batchdeck | source``. argcomplete is
    imported only here: a completion request is the one time it is needed, and a
    command's start never pays for it."""
    import argcomplete

    argcomplete.autocomplete(parser)


def _report(exc: BaseException) -> int:
    if os.environ.get("BATCHDECK_DEBUG"):
        raise exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _report(exc.exceptions[0])
    if isinstance(exc, KeyboardInterrupt):
        print("batchdeck: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, BrokenPipeError):
        return 0
    if isinstance(exc, BatchdeckError):
        print(f"batchdeck: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError):  # the machine's, not batchdeck's: a full or read-only disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"batchdeck: error: {redact(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
    print(f"batchdeck: internal error: {message} (BATCHDECK_DEBUG=1 shows more)", file=sys.stderr)
    return 70
