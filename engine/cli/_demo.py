"""``batchdeck demo``: the README's first run, for a user who installed batchdeck without a clone.

The sample data ships inside the wheel (``pyproject.toml`` force-includes
``sample_data/`` as ``engine/cli/sample_data``), so a ``pipx`` or ``uv tool``
install has it; in a source checkout it is the repo's own ``sample_data/``.
The demo copies it to a folder the user owns, so they can open, edit and rerun
the files, and runs the tickets on ``simulate``: offline, no key, no money.
Files already in that folder are kept, never overwritten: running the demo twice
does not undo the user's edits.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from engine._errors import ConfigError
from engine.cli._args import build_parser

DEMO_INPUT = "tickets.jsonl"
DEMO_PROMPT = "Classify this support ticket: {context}"
DEMO_MODEL = "simulate:gpt-4o-mini"


def sample_data() -> Path:
    """The sample data: inside the package when installed from a wheel, else the repo's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sample_data", here.parents[1] / "sample_data"):
        if (candidate / DEMO_INPUT).is_file():
            return candidate
    raise ConfigError("the sample data is not installed with this batchdeck: reinstall it")


def copy_samples(target: Path) -> Path:
    """Copy the sample files into ``target`` (made if needed), keeping any already there."""
    source = sample_data()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.rglob("*")):
            if path.is_dir() or path.name.startswith("."):
                continue
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if not copy.exists():
                shutil.copyfile(path, copy)
    except OSError as exc:
        raise ConfigError(f"cannot copy the sample data to {target}: {exc.strerror}") from None
    return target


def demo_run_args(target: Path) -> argparse.Namespace:
    """The arguments of ``batchdeck run`` on the copied tickets, as the README's first command."""
    copied = copy_samples(target)
    return build_parser().parse_args(
        ["run", str(copied / DEMO_INPUT), "--prompt", DEMO_PROMPT, "--model", DEMO_MODEL]
    )
