"""Where batchdeck keeps runs, settings, prices and keys.

One place decides, so ``BATCHDECK_HOME`` (tests, portable installs) moves all of
it at once: ``$BATCHDECK_HOME/runs`` (and ``tries``), ``$BATCHDECK_HOME/config`` and
``$BATCHDECK_HOME/cache``; otherwise platformdirs' user data, config and cache
dirs. It also keeps what the user names from landing on what batchdeck keeps
(``refuse_run_files``).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

import platformdirs

from engine._errors import ConfigError

APP_NAME = "batchdeck"

CONFIG_NAME = "config.json"
LOG_NAME = "log.jsonl"
SUMMARY_NAME = "summary.json"
"""What a run dir holds (and ``lock``, see ``engine._lock``); a dir with a log is a run dir."""
EXPORTS_NAME = "exports"
"""The folder in a run dir where its exports go by default: the one place in a run dir a
user's file may be written."""


def _home() -> Path | None:
    home = os.environ.get("BATCHDECK_HOME")
    return Path(home).expanduser() if home else None


def runs_root() -> Path:
    home = _home()
    return home / "runs" if home else Path(platformdirs.user_data_dir(APP_NAME)) / "runs"


def tries_root() -> Path:
    """Where tries keep their runs (``engine._try``): apart from ``runs_root``, so a try
    is no past run in ``batchdeck runs`` or History."""
    home = _home()
    return home / "tries" if home else Path(platformdirs.user_data_dir(APP_NAME)) / "tries"


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    """Where the response cache lives (``engine._cache``)."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def refuse_run_files(path: Path, *, input: str, run_dir: Path) -> None:
    """``ConfigError`` if writing ``path`` would replace the run's input, its log, or
    anything in a run dir: compared by inode, so a hardlink or a symlink to them counts.

    Called before anything is written: an export over the input empties it, and one
    over the log makes the next resume pay for every item again. The run's own
    ``exports`` folder is the exception: that is where its exports go by default.
    """
    _refuse_inside_run_dir(path, Path(os.path.realpath(path.parent)), run_dir)
    try:
        target: os.stat_result | None = path.stat()
    except OSError:
        target = None  # nothing there yet (or unreadable): nothing of ours to replace
    if target is not None:
        if input != "-" and _same(Path(input), path):
            raise ConfigError(
                f"{path} is this run's input file: writing there would destroy it; "
                "pick another path"
            )
        runs = runs_root()
        for folder in (run_dir, *(runs.iterdir() if runs.is_dir() else ())):
            for kept in folder.iterdir() if folder.is_dir() else ():
                with suppress(OSError):
                    if os.path.samestat(kept.stat(), target):
                        raise ConfigError(
                            f"{path} is {kept} (a link to it, or the same file): writing "
                            "there would destroy it; pick another path"
                        )

    _refuse_inside_run_dir(path, Path(os.path.realpath(path)).parent, run_dir)  # via a symlink


def _refuse_inside_run_dir(path: Path, place: Path, run_dir: Path) -> None:
    if _same(place, run_dir / EXPORTS_NAME):
        return
    for folder in (place, *place.parents):
        if _same(folder, run_dir) or _is_run_dir(folder):
            raise ConfigError(
                f"{path} is inside run dir {folder}: write it somewhere else, "
                "run dirs hold only what batchdeck keeps there"
            )


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_run_dir(folder: Path) -> bool:
    return (folder / LOG_NAME).is_file()
