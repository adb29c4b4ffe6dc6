"""A try: a few items of an input on every model, as a real run of their own.

Most users tune a prompt on a handful of items before launching thousands. A try
is the first N items (or N drawn at random, in input order) with the run's own
options, judge and steps included, run as any run is: same caps, rate limits and
response cache, so the full run with the same prompt and models finds the try's
answers in the cache and does not pay for them again. Its models go online (a
batch job may take hours; ``RunConfig.online``): a batch run finds them too.

Each try is a run dir under ``tries_root()`` (its name is the try's id, as a run's
is), its input the chosen items as ``<id>.jsonl`` beside it: kept, so the try's
estimate can be measured against what it used (``engine._calibration``). Tries are
not runs of the user's input, so they stay out of ``runs_root()`` (``batchdeck
runs``, History); the newest ``TRIES_KEPT`` are kept, older ones go when a new one
is made, except one a process is still running.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import Final

import orjson

from engine._atomic import write_atomic
from engine._config import RunConfig
from engine._errors import BatchdeckError, ConfigError
from engine._items import Item
from engine._lock import holder
from engine._paths import tries_root
from engine._run import Run, new_run_id, preflight
from engine.readers import read_items

TRIES_KEPT: Final = 20


def create_try(config: RunConfig, n: int, *, sample: bool = False) -> Run:
    """A new run of ``n`` items of ``config``'s input (the first, or drawn at random with
    ``sample``), every model online, checked as ``Run.create`` checks a run; ``execute``
    it as any run."""
    if n < 1:
        raise ConfigError("the number of items to try must be at least 1", field="n")
    config = preflight(config)  # refused on the user's input, naming it
    entries = (e for e in read_items(config.input, config.format) if isinstance(e, Item))
    chosen = _reservoir(entries, n) if sample else list(islice(entries, n))
    root = tries_root()
    _prune(root)
    run_dir = root / new_run_id()
    items = run_dir.with_suffix(".jsonl")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(items, b"".join(orjson.dumps(dict(item.fields)) + b"\n" for item in chosen))
    except OSError as exc:
        raise ConfigError(f"cannot keep a try in {root}: {exc.strerror or exc}") from None
    try:
        tried = config.online().model_copy(update={"input": str(items), "format": "jsonl"})
        return Run.create(tried, run_dir)
    except BatchdeckError:
        items.unlink(missing_ok=True)
        raise


def _reservoir(items: Iterator[Item], n: int) -> list[Item]:
    """``n`` items drawn uniformly from a stream of unknown length (in input order)."""
    rng = random.Random()
    kept: list[Item] = []
    for seen, item in enumerate(items):
        if seen < n:
            kept.append(item)
        elif (at := rng.randrange(seen + 1)) < n:
            kept[at] = item
    return sorted(kept, key=lambda item: item.line)


def _prune(root: Path) -> None:
    """Room for one more try: the oldest go, but never one a process is running."""
    if not root.is_dir():
        return
    inputs = sorted(root.glob("*.jsonl"), key=lambda p: p.name)
    for items in inputs[: max(0, len(inputs) - TRIES_KEPT + 1)]:
        run_dir = items.with_suffix("")
        with suppress(OSError):
            if holder(run_dir) is not None:
                continue
            shutil.rmtree(run_dir, ignore_errors=True)
            items.unlink()
