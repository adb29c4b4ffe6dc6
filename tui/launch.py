"""The ``batchdeck`` command: the app with no arguments, the headless CLI with any.

It lives in ``tui`` because it may start the app, but imports Textual only then:
``batchdeck run ...`` in a script never pays for loading the UI.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        return cli_main(args)
    from tui.app import run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
