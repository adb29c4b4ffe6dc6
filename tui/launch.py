"""The ``batchdeck`` command: the app with no arguments, the headless CLI with any.

It lives in ``tui`` because it may start the app, but imports Textual only then:
``batchdeck run ...`` in a script never pays for loading the UI. With no
arguments and no terminal (a script, a pipe, cron) there is no one to drive
the app: the CLI's help goes to stderr and the exit code is 2, as for any
usage error, instead of an app drawing into a pipe.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from engine.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    completing = "_ARGCOMPLETE" in os.environ  # the shell asks the CLI for completions
    if args or completing or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return cli_main(args)
    from tui.app import run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
