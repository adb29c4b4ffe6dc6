"""The command line's grammar, and the one place flags become a ``RunConfig``.

``run``, ``estimate`` and ``resume`` share the run options so a flag means the
same thing everywhere; ``resume`` accepts only those that cannot change results.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from engine._config import DEFAULT_MODEL, RunConfig, make_config
from engine._errors import ConfigError
from engine._schema import load_schema


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, with no usage dump."""

    def error(self, message: str) -> Any:
        self.exit(2, f"batchdeck: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_speed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive_int, help="calls in flight at once (default 8)")
    p.add_argument("--max-cost", type=float, metavar="USD", help="hard cap on the run's spend")
    p.add_argument("--max-item-cost", type=float, metavar="USD", help="hard cap per item")
    p.add_argument("--time-limit", type=float, metavar="S", help="stop sending after S seconds")
    p.add_argument("--max-items", type=int, metavar="N", help="send at most N calls this time")
    p.add_argument("--retries", type=int, metavar="N", help="attempts after the first (default 3)")
    p.add_argument(
        "--retry-wait", type=float, metavar="S", help="base of the exponential backoff (0.5)"
    )
    p.add_argument("--rpm", type=float, help="requests per minute per model")
    p.add_argument("--tpm", type=float, help="tokens per minute per model")
    p.add_argument(
        "--burst",
        type=float,
        metavar="S",
        help="seconds of rate limit calls may run ahead of the pace (default 1)",
    )
    p.add_argument(
        "--durability", choices=("fsync", "flush"), help="fsync each log group (default)"
    )
    p.add_argument("--output", metavar="FILE", help="also write results to FILE (.jsonl or .csv)")
    _add_csv_raw(p)
    p.add_argument("--quiet", action="store_true", help="print only the summary")


def _add_csv_raw(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv-raw",
        action="store_true",
        help="write CSV text cells as they are (by default a cell starting with = + - @ gets a '",
    )


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is running this run, wait for it to end (Ctrl+C gives up)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a .jsonl, .csv, .txt/.md or .json file, or - for stdin")
    p.add_argument("--format", choices=("jsonl", "csv", "txt", "json"))
    p.add_argument("--prompt", metavar="T", help="prompt template: {context}, {any_field}")
    p.add_argument("--system", metavar="T", help="system prompt")
    p.add_argument(
        "--model",
        action="append",
        metavar="P:M",
        help=f"provider:model, repeat to compare models (default {DEFAULT_MODEL})",
    )
    p.add_argument("--timeout", type=float, metavar="S", help="per-call timeout (default 60)")
    p.add_argument("--max-tokens", type=_positive_int, metavar="N", help="default 512")
    p.add_argument("--temperature", type=float)
    p.add_argument("--stop", action="append", metavar="TEXT", help="stop sequence (repeatable)")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="provider field passed through"
    )
    p.add_argument("--schema", metavar="FILE|module:Model", help="JSON Schema for the output")
    p.add_argument("--base-url", metavar="URL", help="the provider's API root")
    p.add_argument("--sim-latency-ms", type=float, metavar="MS", help="simulate: median latency")
    p.add_argument("--sim-failure-rate", type=float, metavar="P", help="simulate: failure odds")
    p.add_argument("--sim-seed", type=int, metavar="N", help="simulate: seed")
    _add_speed_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="batchdeck",
        description="Run a file of items through LLMs under hard caps on money, time and rate.",
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    run = commands.add_parser("run", help="run every item of INPUT")
    _add_run_options(run)
    run.add_argument("--run-dir", metavar="DIR", help="where the run's log lives")
    run.add_argument("--resume", action="store_true", help="go on with the run in --run-dir")
    run.add_argument("--retry-failed", action="store_true", help="on resume, rerun failed items")
    run.add_argument(
        "--force", action="store_true", help="resume even if the input or config.json changed"
    )
    _add_wait(run)

    resume = commands.add_parser("resume", help="go on with a stopped or killed run")
    resume.add_argument("run", metavar="RUN", help="run id or run dir")
    resume.add_argument("--retry-failed", action="store_true")
    resume.add_argument("--force", action="store_true")
    _add_wait(resume)
    _add_speed_options(resume)

    estimate = commands.add_parser("estimate", help="items, tokens, cost range and time, no calls")
    _add_run_options(estimate)

    commands.add_parser("runs", help="list past runs")

    export = commands.add_parser("export", help="write a run's results")
    export.add_argument("run", metavar="RUN")
    export.add_argument("--format", choices=("jsonl", "csv"))
    export.add_argument("--status", choices=("ok", "failed", "skipped", "all"), default="all")
    export.add_argument("--output", metavar="FILE", help="default: stdout")
    _add_csv_raw(export)

    keys = commands.add_parser("keys", help="which providers have a key, and from where")
    key_commands = keys.add_subparsers(dest="keys_command", parser_class=_Parser)
    key_set = key_commands.add_parser("set", help="store a key (keyring, or a 0600 file)")
    key_set.add_argument("provider")
    return parser


def _params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[key] = raw
    return params


SPEED_FIELDS = {
    "workers": "workers",
    "max_cost": "max_cost",
    "max_item_cost": "max_item_cost",
    "time_limit": "time_limit",
    "max_items": "max_items",
    "rpm": "rpm",
    "tpm": "tpm",
    "burst": "burst",
    "durability": "durability",
}


def speed_overrides(args: argparse.Namespace, base: RunConfig) -> dict[str, Any]:
    """The speed and cap flags the user gave, as RunConfig updates."""
    updates = {
        field: getattr(args, flag)
        for flag, field in SPEED_FIELDS.items()
        if getattr(args, flag, None) is not None
    }
    retry = {
        field: getattr(args, flag)
        for flag, field in (("retries", "retries"), ("retry_wait", "base_s"))
        if getattr(args, flag, None) is not None
    }
    if retry:
        updates["retry"] = {**base.retry.model_dump(), **retry}
    return updates


def with_overrides(base: RunConfig, updates: dict[str, Any]) -> RunConfig:
    return make_config(**{**base.model_dump(), **updates})


def config_from_args(args: argparse.Namespace) -> RunConfig:
    sim_updates = {
        name: value
        for name, value in (
            ("latency_ms", args.sim_latency_ms),
            ("failure_rate", args.sim_failure_rate),
            ("seed", args.sim_seed),
        )
        if value is not None
    }
    values: dict[str, Any] = {
        "input": args.input,
        "format": args.format,
        "prompt": args.prompt,
        "system": args.system,
        "models": tuple(args.model or (DEFAULT_MODEL,)),
        "temperature": args.temperature,
        "stop": tuple(args.stop or ()),
        "params": _params(args.param),
        "base_url": args.base_url,
        "sim": sim_updates,
    }
    for flag in ("timeout", "max_tokens"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    if args.schema:
        values["schema_ref"] = args.schema
        values["output_schema"] = load_schema(args.schema)
    base = make_config(**values)
    return with_overrides(base, speed_overrides(args, base))
