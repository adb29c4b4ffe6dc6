"""``batchdeck compare RUN [--format text|json]``: the models of a run side by side.

Its own module so the run commands stay about runs; the figures are
``engine._compare``'s, read from the run's log by ``engine._runs.compare_run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

import orjson

from engine._compare import ModelScore, StepScores
from engine._run import Run
from engine._runs import compare_run


def add_compare_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    compare = commands.add_parser(
        "compare",
        help="a run's models side by side: answered, judge wins, agreement, cost, latency",
    )
    compare.add_argument("run", metavar="RUN", help="run id or run dir")
    compare.add_argument("--format", choices=("text", "json"), default="text")


def cmd_compare(args: argparse.Namespace) -> int:
    scores = compare_run(Run.open(args.run))
    if args.format == "json":
        data = {"run": args.run, "steps": [step.as_json() for step in scores]}
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_scores(scores, sys.stdout)
    return 0


def print_scores(scores: Sequence[StepScores], out: IO[str]) -> None:
    if not scores:
        print("nothing to compare: every step of this run has one model and no judge", file=out)
    for step in scores:
        judged = f", judged by {', '.join(step.judges)}" if step.judges else ""
        title = f"step {step.step}" if step.step else "models"
        print(f"{title}: {step.items:,} items{judged}", file=out)
        width = max(len("model"), *(len(m.model) for m in step.models))
        print(
            f"  {'model':<{width}}  {'answered':>9}  {'wins':>5}  {'win rate':>8}  "
            f"{'agree':>6}  {'mean $':>10}  {'mean ms':>8}  {'$ per win':>10}",
            file=out,
        )
        for model in step.models:
            print(f"  {_line(model, width)}", file=out)
            for name, share in model.field_agreement.items():
                print(f"  {'':<{width}}  agree on {name}: {share:.1%}", file=out)


def _line(model: ModelScore, width: int) -> str:
    return (
        f"{model.model:<{width}}  {f'{model.answered}/{model.results}':>9}  "
        f"{_or_dash(model.wins, '{:d}'):>5}  {_or_dash(model.win_rate, '{:.1%}'):>8}  "
        f"{_or_dash(model.agreement, '{:.1%}'):>6}  "
        f"{_or_dash(model.mean_cost_usd, '${:.6f}'):>10}  "
        f"{_or_dash(model.mean_latency_ms, '{:.1f}'):>8}  "
        f"{_or_dash(model.cost_per_win_usd, '${:.6f}'):>10}"
    )


def _or_dash(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
