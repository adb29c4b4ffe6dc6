"""``batchdeck try INPUT --n 20 [--sample] [run options]``: a few items on every model, now.

The try itself is ``engine._try``'s (a real run of the chosen items, kept under the
tries dir); this prints it: the answers item by item, lane under lane, then (from
the caller) the models' scoreboard, and what the full input would cost, estimated
with the tokens the try's calls actually used (``engine._calibration``). Its
answers stay in the response cache, so the full run with the same prompt and
models does not pay for them again (``simulate``'s are never cached: they cost
nothing).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import IO, Any

from engine._calibration import calibration_of
from engine._config import RunConfig
from engine._estimate import estimate
from engine._item_rows import ItemRow
from engine._run import Run
from engine._steps import split_lane

PREVIEW_CHARS = 300
"""How much of an answer a try prints."""


def add_try_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=20, metavar="N", help="items to try (default 20)")
    p.add_argument(
        "--sample", action="store_true", help="N items drawn at random instead of the first N"
    )


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


def print_projection(config: RunConfig, tried: Run, out: IO[str]) -> None:
    """What the full input would cost, estimated at the tokens the try's calls used."""
    calibration = calibration_of(tried)
    found = estimate(config, calibration=calibration)
    cost = "cost unknown" if found.cost_likely is None else f"~${found.cost_likely:.4f} likely"
    if found.calibrated_items:
        how = f"calibrated from {found.calibrated_items:,} sampled items (the tokens they used)"
    else:
        how = "not calibrated: no call of this try used tokens it could count"
    cached = f"; {found.cached:,} calls answered by the response cache, free" * bool(found.cached)
    print(f"the full input ({found.items:,} items): {cost}, {how}{cached}", file=out)
    print(
        f"the same estimate later: batchdeck estimate with these options and "
        f"--calibrate-from {tried.run_dir}",
        file=out,
    )
