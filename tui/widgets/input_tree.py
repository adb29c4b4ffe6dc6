"""A directory tree that shows only folders and the files batchdeck can read.

Hidden entries are left out too: a home directory is mostly dotfiles, and an
input file is never one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from textual.widgets import DirectoryTree

INPUT_SUFFIXES: Final = frozenset({".jsonl", ".csv", ".txt", ".md", ".json"})


class InputTree(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            path
            for path in paths
            if not path.name.startswith(".")
            and (path.is_dir() or path.suffix.lower() in INPUT_SUFFIXES)
        ]
