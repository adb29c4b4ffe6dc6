"""``batchdeck try INPUT --n 20 [--sample] [run options]``: a few items on every model, now.

Most users tune a prompt on a handful of items before launching thousands. A try is
a real run of the first N items (or N drawn at random) with the run's options, the
judge and the steps included, in a throwaway run dir: its answers are printed item
by item, lane under lane, then the models' scoreboard and what the full input would
cost at the tokens these items actually used. Its answers stay in the response
cache, so the full run with the same prompt and models does not pay for them again
(``simulate``'s are never cached: they cost nothing).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from engine._config import RunConfig
from engine._item_rows import ItemRow
from engine._items import Item
from engine._steps import split_lane
from engine.readers import count_items, read_items

PREVIEW_CHARS = 300
"""How much of an answer a try prints."""


def add_try_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=20, metavar="N", help="items to try (default 20)")
    p.add_argument(
        "--sample", action="store_true", help="N items drawn at random instead of the first N"
    )


@contextmanager
def tried_input(config: RunConfig, n: int, sample: bool) -> Iterator[RunConfig]:
    """``config`` over a temporary JSONL of the items to try (their fields as they are)."""
    entries = (e for e in read_items(config.input, config.format) if isinstance(e, Item))
    chosen = _reservoir(entries, n) if sample else list(islice(entries, n))
    with tempfile.TemporaryDirectory(prefix="batchdeck-try-") as tmp:
        path = Path(tmp) / "items.jsonl"
        path.write_bytes(b"".join(orjson.dumps(dict(item.fields)) + b"\n" for item in chosen))
        yield config.model_copy(update={"input": str(path), "format": "jsonl"})


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


def print_answers(rows: Sequence[ItemRow], out: IO[str]) -> None:
    for row in rows:
        print(f"{row.first.id}  {row.status}  ${row.cost_usd:.6f}", file=out)
        for result in row.results:
            step, model = split_lane(result.model)
            name = f"{step} {model}" if step else model
            said = result.output if result.status == "ok" else _error(result.error)
            text = " ".join(str(said or "").split())
            if len(text) > PREVIEW_CHARS:
                text = text[: PREVIEW_CHARS - 3] + "..."
            print(f"  {name}: {text}", file=out)


def _error(error: Any) -> str:
    return "" if error is None else f"[{error.kind}] {error.message}"


def print_projection(config: RunConfig, rows: Sequence[ItemRow], out: IO[str]) -> None:
    """What the full input would cost at what these items cost (their real tokens)."""
    total = count_items(config.input, config.format)
    if not rows or total is None:
        return
    spent = sum(row.cost_usd for row in rows)
    cached = not all(model.startswith("simulate:") for model in config.models)
    print(
        f"the full input ({total:,} items): ~${spent / len(rows) * total:.4f}, calibrated from "
        f"the tokens these {len(rows)} items used (${spent:.6f})"
        + ("; their answers are in the response cache: the full run does not pay for them "
           "again" if cached else ""),
        file=out,
    )  # fmt: skip
