"""Where batchdeck keeps runs, settings, prices and keys.

One place decides, so ``BATCHDECK_HOME`` (tests, portable installs) moves all of
it at once: ``$BATCHDECK_HOME/runs`` and ``$BATCHDECK_HOME/config``; otherwise
platformdirs' user data and config dirs.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "batchdeck"


def _home() -> Path | None:
    home = os.environ.get("BATCHDECK_HOME")
    return Path(home).expanduser() if home else None


def runs_root() -> Path:
    home = _home()
    return home / "runs" if home else Path(platformdirs.user_data_dir(APP_NAME)) / "runs"


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))
