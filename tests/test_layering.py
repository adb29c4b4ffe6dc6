"""The engine/UI seam: importing the engine, or running the headless CLI, never loads Textual.

``rich`` is not checked at run time: httpx's own ``__init__`` imports it (for its
command line) whenever it is installed, which Textual guarantees. That the
engine's code never imports it is what the import-linter contract checks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli import REPO


def test_engine_imports_no_ui() -> None:
    code = (
        "import sys, engine, engine._run, engine._runs, engine.cli, engine.providers, engine.log\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(','.join(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_import_linter_contract_holds() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", "pyproject.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
