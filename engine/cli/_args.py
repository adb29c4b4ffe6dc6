"""The command line's grammar, and the one place flags become a ``RunConfig``.

``run``, ``estimate`` and ``resume`` share the run options so a flag means the
same thing everywhere; ``resume`` accepts only those that cannot change results.
The setting flags (``--workers``, ``--max-cost``, ...) are not written here:
one is made for each declared setting in ``SETTINGS``, with its help, unit,
bounds and default from the declaration, and the values given are read back by
the same names. A new run's settings are its flags over ``BATCHDECK_*`` over
``config.toml`` (``engine._sources``); a resume keeps the run's own and takes
only flags.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

import orjson

from engine._config import (
    DEFAULT_MODEL,
    SETTINGS,
    SETTINGS_BY_NAME,
    SPEED_SETTINGS,
    RunConfig,
    Setting,
    config_fields,
    labelled,
    make_config,
)
from engine._errors import ConfigError
from engine._export import EXPORT_FORMATS, STATUS_FILTERS
from engine._pipeline_file import load_pipeline
from engine._schema import load_schema
from engine._secrets import strip_url_credentials
from engine._sources import CONFIG_FILE, config_file, default_settings, file_endpoints
from engine._steps import judge_steps
from engine.cli._cache import add_cache_parser
from engine.cli._compare import add_compare_parser
from engine.cli._prices import add_prices_parser
from engine.cli._try import add_try_options


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, with no usage dump."""

    def error(self, message: str) -> Any:
        self.exit(2, f"batchdeck: {message} (see {self.prog} --help)\n")


def _parse_as(setting: Setting) -> Callable[[str], Any]:
    """argparse's ``type`` for a setting: its own validation, its reason as argparse's."""

    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{setting.name}: ")) from None

    return parse


def _add_setting(p: argparse.ArgumentParser, setting: Setting, default_help: str) -> None:
    help_text = f"{setting.about.help} {default_help}"
    if setting.kind == "bool":  # --name / --no-name; None when neither is given
        p.add_argument(setting.flag, action=argparse.BooleanOptionalAction, help=help_text)
        return
    p.add_argument(
        setting.flag,
        type=_parse_as(setting),
        choices=setting.choices or None,
        metavar=setting.about.unit or None,
        help=help_text,
    )


CALL_OVERRIDES: tuple[str, ...] = ("max_tokens",)
"""Settings that change results which a resume still takes: not as the run's setting, but for
the calls it sends (a larger limit for truncated answers), each result keeping its own."""


def _add_new_run_settings(p: argparse.ArgumentParser) -> None:
    for setting in SETTINGS:
        _add_setting(p, setting, f"(default: {setting.default_text})")


def _add_resume_settings(p: argparse.ArgumentParser) -> None:
    for setting in SPEED_SETTINGS:
        fresh = "(default: none; it counts per invocation)"
        _add_setting(p, setting, fresh if setting.about.per_invocation else "(default: the run's)")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output",
        metavar="FILE",
        help="when the run ends, write its results to FILE (.jsonl, .csv or .parquet) in "
        "input order; - writes JSONL to stdout",
    )
    _add_export_options(p)
    p.add_argument(
        "--detach",
        action="store_true",
        help="with batch models: return once every batch job is submitted (batchdeck resume "
        "RUN fetches their results)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary")


def _add_export_options(p: argparse.ArgumentParser) -> None:
    _add_csv_raw(p)
    p.add_argument(
        "--export-prompt",
        action="store_true",
        help="add the rendered prompt each item was sent (column prompt)",
    )
    p.add_argument(
        "--attempts",
        action="store_true",
        help="add every attempt of each item, an edited prompt marked (attempt_history; "
        "JSONL and Parquet)",
    )


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
        metavar="P:M[=URL]",
        help=f"provider:model, repeat to compare models (default {DEFAULT_MODEL}); "
        "=URL (or =NAME of an endpoint in config.toml's [endpoints]) gives that model "
        "its own API root, e.g. llamacpp:smollm2=http://127.0.0.1:8080/v1",
    )
    p.add_argument("--stop", action="append", metavar="TEXT", help="stop sequence (repeatable)")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="provider field passed through"
    )
    p.add_argument("--schema", metavar="FILE|module:Model", help="JSON Schema for the output")
    p.add_argument(
        "--pipeline",
        metavar="FILE",
        help="a TOML file of [[step]] tables (name, model(s), prompt, ...): each item goes "
        "through the steps, a later one reading earlier answers ({extract.output}, "
        "{extract.parsed.FIELD}, {answers})",
    )
    p.add_argument(
        "--judge",
        metavar="P:M",
        help="after the --model(s) answer, this model judges their answers: verdict, "
        "confidence, reasoning and the best model, per item",
    )
    p.add_argument(
        "--judge-prompt",
        metavar="T",
        help="the judge's prompt instead of the built-in one ({answers}: the labelled "
        "answers, {answer.prompt}: the task they were given, any item field)",
    )
    p.add_argument(
        "--debate",
        action="store_true",
        help="the --models (two or more) answer, then each revises its answer once, seeing "
        "the other models' answers (step answer-revised); a --judge reads the revised ones",
    )
    p.add_argument(
        "--revise-prompt",
        metavar="T",
        help="a debate's revise prompt instead of the built-in one ({task}: the task, "
        "{own_answer}: the model's first answer, {other_answers}: the others', labelled)",
    )
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="the API root of every model that has none of its own (--model P:M=URL); "
        "default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL for those providers, else the preset's",
    )
    _add_new_run_settings(p)
    _add_output_options(p)


DEMO_DIR = "batchdeck-demo"

NEW_RUN_EPILOG = (
    "Each setting flag (--workers ... --sim-seed) can also be set by a BATCHDECK_<NAME> variable "
    f"(BATCHDECK_WORKERS=16) or a key in <config dir>/{CONFIG_FILE} (workers = 16); "
    "a flag beats a variable, which beats the file."
)
RESUME_EPILOG = (
    "A resume keeps the settings the run was saved with, except those given as flags here "
    f"(BATCHDECK_* variables and {CONFIG_FILE} are defaults for new runs only)."
)


RETRY_FAILED_HELP = (
    "run the failed and skipped items again, with the run's settings (by default resume "
    "runs only items that have no result yet)"
)


def _add_forget_job(parser: argparse.ArgumentParser, lead: str = "") -> None:
    parser.add_argument(
        "--forget-job",
        action="append",
        default=[],
        metavar="JOB",
        help=f"{lead}a batch job its provider no longer knows (the run stops saying so): its "
        "requests without a result are sent again, paid again if the job had run them "
        "(repeat for several)",
    )


FORCE_HELP = (
    "resume even if the input file or config.json changed since the run started: finished "
    "items are then matched by id instead of by line (by default resume refuses)"
)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of text")


def _version() -> str:
    try:
        return version("batchdeck")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="batchdeck",
        description="Run a file of items through LLMs under hard caps on money, time and rate. "
        "With no arguments, in a terminal: the app.",
    )
    parser.add_argument("--version", action="version", version=f"batchdeck {_version()}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    run = commands.add_parser("run", help="run every item of INPUT", epilog=NEW_RUN_EPILOG)
    _add_run_options(run)
    run.add_argument("--run-dir", metavar="DIR", help="where the run's log lives")
    run.add_argument(
        "--resume",
        action="store_true",
        help="go on with the run in --run-dir: it keeps the settings it was saved with, "
        "except the setting flags given here (as batchdeck resume does)",
    )
    run.add_argument(
        "--retry-failed", action="store_true", help=f"with --resume: {RETRY_FAILED_HELP}"
    )
    run.add_argument("--force", action="store_true", help=f"with --resume: {FORCE_HELP}")
    _add_forget_job(run, "with --resume: ")
    _add_wait(run)

    resume = commands.add_parser(
        "resume", help="go on with a stopped or killed run", epilog=RESUME_EPILOG
    )
    resume.add_argument("run", metavar="RUN", help="run id or run dir")
    resume.add_argument("--retry-failed", action="store_true", help=RETRY_FAILED_HELP)
    resume.add_argument("--force", action="store_true", help=FORCE_HELP)
    _add_forget_job(resume)
    _add_wait(resume)
    for name in CALL_OVERRIDES:
        _add_setting(
            resume,
            SETTINGS_BY_NAME[name],
            "(default: the run's). Given here, it is the limit of the calls this resume sends "
            "(with --retry-failed: a larger one for answers cut off at the last), kept in their "
            "results; the run's own setting does not change.",
        )
    _add_resume_settings(resume)
    _add_output_options(resume)

    estimate = commands.add_parser(
        "estimate", help="items, tokens, cost range and time, no calls", epilog=NEW_RUN_EPILOG
    )
    _add_run_options(estimate)
    _add_json(estimate)
    estimate.add_argument(
        "--expect-output",
        type=_whole_number,
        metavar="N",
        help="output tokens a call is expected to write (default: simulate's own, a schema's "
        "example, or a quarter of --max-tokens)",
    )
    estimate.add_argument(
        "--calibrate-from",
        metavar="RUN",
        help="a run (id or dir; a try's dir, as batchdeck try prints it): each model's "
        "tokens scaled to what its calls there used",
    )

    _add_json(commands.add_parser("runs", help="list past runs"))

    batches = commands.add_parser("batches", help="provider batch jobs of all runs, or of one")
    batches.add_argument("run", metavar="RUN", nargs="?", help="run id or run dir")
    _add_json(batches)
    cancel = commands.add_parser(
        "cancel", help="cancel a run's batch jobs at their provider (their items stay pending)"
    )
    cancel.add_argument("run", metavar="RUN", help="run id or run dir")

    export = commands.add_parser("export", help="write a run's results")
    export.add_argument("run", metavar="RUN")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, help="default: the --output file's suffix, or jsonl"
    )
    export.add_argument("--status", choices=STATUS_FILTERS, default="all")
    export.add_argument(
        "--output",
        metavar="FILE",
        help="default (or -): stdout; parquet needs a file (pip install 'batchdeck[parquet]')",
    )
    _add_export_options(export)

    add_cache_parser(commands)

    keys = commands.add_parser("keys", help="which providers have a key, and from where")
    _add_json(keys)
    key_commands = keys.add_subparsers(dest="keys_command", parser_class=_Parser)
    key_set = key_commands.add_parser("set", help="store a key (keyring, or a 0600 file)")
    key_set.add_argument("provider")

    demo = commands.add_parser(
        "demo",
        help="copy the sample data to DIR and run it on simulate (offline, no key)",
    )
    demo.add_argument(
        "dir", metavar="DIR", nargs="?", default=DEMO_DIR, help=f"default: ./{DEMO_DIR}"
    )

    add_prices_parser(commands)
    add_compare_parser(commands)

    tried = commands.add_parser(
        "try",
        help="the first N items (or N at random) on every model, answers side by side",
        epilog=NEW_RUN_EPILOG,
    )
    _add_run_options(tried)
    add_try_options(tried)
    return parser


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


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


def _models(given: list[str]) -> dict[str, Any]:
    """``models`` and ``base_urls`` from ``--model P:M``, ``P:M=URL`` or ``P:M=NAME``
    (an endpoint named in config.toml's ``[endpoints]``). The same model on two servers
    is two models of the run, each labelled by where it runs (``_server_labels``)."""
    pairs: list[tuple[str, str | None, str]] = []
    endpoints: dict[str, str] | None = None
    for text in given:
        model, sep, where = text.partition("=")
        if not sep:
            pairs.append((model, None, ""))
            continue
        if "://" not in where:
            endpoints = file_endpoints() if endpoints is None else endpoints
            if where not in endpoints:
                named = f"(it has: {', '.join(endpoints)})" if endpoints else "(it has none)"
                raise ConfigError(
                    f"--model {text}: {where!r} is neither a URL nor an endpoint in "
                    f"{config_file()}'s [endpoints] {named}"
                )
            pairs.append((model, endpoints[where], where))
        else:
            pairs.append((model, where, ""))
    models = _server_labels(pairs)
    base_urls = {label: url for label, (_, url, _) in zip(models, pairs, strict=True) if url}
    return {"models": tuple(models), "base_urls": base_urls}


def _server_labels(pairs: list[tuple[str, str | None, str]]) -> list[str]:
    """Each (model, base URL, endpoint name) as the run names it: the model, unless it is
    given more than once, then labelled by where it runs (``_where``)."""
    counts = Counter(model for model, _, _ in pairs)
    short = [_where(url, name, whole=False) for _, url, name in pairs]
    labels = []
    for (model, url, name), here in zip(pairs, short, strict=True):
        if counts[model] == 1:
            labels.append(model)
            continue
        twins = [where for (other, _, _), where in zip(pairs, short, strict=True) if other == model]
        unique = twins.count(here) == 1
        labels.append(labelled(model, here if unique else _where(url, name, whole=True)))
    return labels


def _where(url: str | None, name: str, *, whole: bool) -> str:
    """How a label names a server: the endpoint's name, else its URL's host and port (the
    whole URL, credentials stripped, when those do not tell it apart), else ``default``."""
    if name:
        return name
    if url is None:
        return "default"
    return strip_url_credentials(url) if whole else urlsplit(url).netloc.rpartition("@")[2]


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The setting flags this invocation gave, by setting name."""
    return {
        setting.name: getattr(args, setting.name)
        for setting in SETTINGS
        if getattr(args, setting.name, None) is not None
    }


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A new run's config: its flags over ``BATCHDECK_*`` over ``config.toml``."""
    values: dict[str, Any] = {
        "input": args.input,
        "format": args.format,
        "prompt": args.prompt,
        "system": args.system,
        **_models(args.model or [DEFAULT_MODEL]),
        "stop": tuple(args.stop or ()),
        "params": _params(args.param),
        "base_url": args.base_url,
    }
    if args.schema:
        values["schema_ref"] = args.schema
        values["output_schema"] = load_schema(args.schema)
    values.update(_steps(args, values))
    return make_config(**values, **config_fields({**default_settings(), **given_settings(args)}))


def _steps(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """``steps`` (and the ``models`` they name) from ``--pipeline``, ``--judge`` or
    ``--debate``."""
    if args.judge_prompt is not None and args.judge is None:
        raise ConfigError("--judge-prompt needs --judge MODEL")
    if args.revise_prompt is not None and not args.debate:
        raise ConfigError("--revise-prompt needs --debate")
    if args.pipeline is not None:
        given = [flag for flag, value in (("--model", args.model), ("--prompt", args.prompt),
                 ("--system", args.system), ("--schema", args.schema), ("--judge", args.judge),
                 ("--debate", args.debate)) if value]  # fmt: skip
        if given:
            raise ConfigError(
                f"{given[0]} with --pipeline: the pipeline file gives each step its own"
            )
        steps = load_pipeline(args.pipeline)
    elif args.judge is not None or args.debate:
        if args.debate and len(values["models"]) < 2:
            raise ConfigError(
                "--debate needs two or more --model: each revises its answer seeing the others'"
            )
        steps = judge_steps(
            values["models"],
            args.judge,
            prompt=args.prompt,
            system=args.system,
            schema=values.get("output_schema"),
            judge_prompt=args.judge_prompt,
            debate=args.debate,
            revise_prompt=args.revise_prompt,
        )
    else:
        return {}
    models = tuple(dict.fromkeys(model for step in steps for model in step.models))
    return {"steps": steps, "models": models, "prompt": None, "system": None,
            "output_schema": None, "schema_ref": None}  # fmt: skip
