"""The headless commands: run, resume, estimate, runs, export, keys, demo, prices (and
``cache``, in ``_cache``).

Each returns the process exit code; errors the user can fix are raised as
``BatchdeckError`` and printed as one line by ``main``.

Exit codes: 0 every item ok; 1 finished with failed or skipped items; 2 usage,
config or input error, or a run that failed on its own (every call refused on
auth, a broken log); 3 stopped by a cap or the time limit with items left; 130
interrupted (resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import signal
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import anyio

from engine import keys
from engine._calibration import calibration_of
from engine._config import RunConfig
from engine._errors import ConfigError
from engine._estimate import estimate
from engine._events import RunFinished, Subscriber
from engine._export import (
    ExportChoice,
    StatusFilter,
    format_for,
    output_bytes,
    pyarrow_modules,
)
from engine._paths import refuse_run_files
from engine._run import Run, preflight
from engine._runs import (
    RunSummary,
    compare_run,
    export_mode,
    export_run,
    export_to_file,
    item_rows,
    list_runs,
    next_steps,
    write_run,
)
from engine._try import create_try
from engine.cli._args import CALL_OVERRIDES, config_from_args, given_settings
from engine.cli._batches import cmd_batches, cmd_cancel
from engine.cli._cache import cmd_cache
from engine.cli._compare import cmd_compare, print_scores
from engine.cli._demo import demo_run_args
from engine.cli._json import print_json
from engine.cli._prices import cmd_prices
from engine.cli._progress import Progress
from engine.cli._try import print_answers, print_projection

STDOUT = "-"
"""``--output -``: the results go to stdout."""
EXIT_CODES = {"finished": 0, "capped": 3, "stopped": 130, "failed": 2}


def exit_code(finished: RunFinished) -> int:
    if finished.state == "finished":
        return 0 if finished.failed == finished.skipped == finished.truncated == 0 else 1
    return EXIT_CODES.get(finished.state, 1)


def cmd_run(args: argparse.Namespace) -> int:
    if args.forget_job and not args.resume:
        raise ConfigError("--forget-job goes with --resume: a new run has no batch jobs yet")
    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs --run-dir DIR (or use: batchdeck resume RUN)")
        run = Run.open(args.run_dir)
        return _execute(*_with_speed(run, args), args)
    config = config_from_args(args)
    run = Run.create(config, Path(args.run_dir) if args.run_dir else None)
    return _execute(run, None, args)


def cmd_resume(args: argparse.Namespace) -> int:
    return _execute(*_with_speed(Run.open(args.run), args), args)


def _with_speed(run: Run, args: argparse.Namespace) -> tuple[Run, int | None]:
    """The saved run with this invocation's setting flags, and the raised ``--max-tokens``
    of the calls this resume sends (it is not the run's setting: each result keeps it)."""
    settings = given_settings(args)
    overrides = {name: settings.pop(name, None) for name in CALL_OVERRIDES}
    return run.for_resume(**settings), overrides["max_tokens"]


def _execute(run: Run, max_tokens: int | None, args: argparse.Namespace) -> int:
    progress = Progress(sys.stderr, live=sys.stderr.isatty(), quiet=args.quiet)
    subscribers: list[Subscriber] = [progress]
    with ExitStack() as stack:
        _hold(run, args.wait, progress, stack)
        write_output = _output_file(run, Path(args.output), stack, args) if args.output else None
        finished = anyio.run(
            _drive, run, subscribers, progress, args.retry_failed, args.force, max_tokens,
            args.detach, tuple(args.forget_job),
        )  # fmt: skip
        if write_output is not None:
            write_output()
    progress.write(progress.summary(finished) + "\n")
    if args.output and args.output != STDOUT:
        progress.write(f"results: {args.output}\n")
    progress.write(f"{next_steps(run.run_id, finished)}\n")
    if finished.batch_jobs_left:
        progress.write(
            f"{finished.batch_jobs_left} batch job(s) of run {run.run_id} still running at the "
            f"provider: batchdeck resume {run.run_id} fetches their results\n"
        )
        if args.detach and finished.state == "stopped":
            return 0
    return exit_code(finished)


def _hold(run: Run, wait: bool, progress: Progress, stack: ExitStack) -> None:
    """Hold the run for the whole command: ``RunBusy`` if another process drives it, or
    with ``wait`` wait for it; Ctrl+C gives up waiting even where SIGINT was ignored."""
    if wait and (holder := run.holder()) is not None:
        progress.note(f"waiting for {holder} to end run {run.run_id} (Ctrl+C gives up)")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack.enter_context(run.held(wait=wait))
    finally:
        signal.signal(signal.SIGINT, previous)


async def _drive(
    run: Run,
    subscribers: list[Subscriber],
    progress: Progress,
    retry_failed: bool,
    force: bool,
    max_tokens: int | None,
    detach: bool,
    forget_jobs: tuple[str, ...] = (),
) -> RunFinished:
    async with anyio.create_task_group() as tg:
        tg.start_soon(progress.ticker)
        tg.start_soon(_interrupts, run, progress)
        finished = await run.execute(
            subscribers,
            retry_failed=retry_failed,
            force=force,
            max_tokens=max_tokens,
            detach=detach,
            forget_jobs=forget_jobs,
        )
        tg.cancel_scope.cancel()
    return finished


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl+C, a kill, and the terminal closing (SIGHUP): each stops the run gracefully."""


async def _interrupts(run: Run, progress: Progress) -> None:
    """First Ctrl+C (or SIGTERM, SIGHUP): finish calls in flight and stop. Second: abort them."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                progress.note("stopping: finishing calls in flight (Ctrl+C again to abort them)")
                run.stop()
            else:
                progress.note("aborting calls in flight: they will run again on resume")
                run.abort()


def _output_file(
    run: Run, path: Path, stack: ExitStack, args: argparse.Namespace
) -> Callable[[], None]:
    """What writes the run's results to ``path`` once the execution has ended, from its
    log, in input order. A temp file is opened now (a path that cannot be written is
    refused before the first call) and replaces ``path`` when the block ends, so any
    earlier file stays whole until then, and if the run is refused. ``-`` is stdout
    (JSONL)."""
    choice = _choice(args)
    if str(path) == STDOUT:

        def to_stdout() -> None:
            export_run(run, sys.stdout, "jsonl", choice)

        return to_stdout
    fmt = format_for(path)
    if fmt == "parquet":
        pyarrow_modules()  # missing, it is said before the run, not after
    refuse_run_files(path, input=run.config.input, run_dir=run.run_dir)
    try:
        raw = stack.enter_context(output_bytes(path, mode=export_mode(run)))
    except OSError as exc:
        raise _output_failed(path, exc.strerror or str(exc)) from None

    def write() -> None:
        try:
            write_run(run, raw, fmt, choice)
            raw.flush()
        except OSError as exc:
            raise _output_failed(path, exc.strerror or str(exc)) from None

    return write


def _output_failed(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"--output {path}: {reason}; the results are in the run's log "
        "(batchdeck export RUN --output FILE)"
    )


def cmd_estimate(args: argparse.Namespace) -> int:
    """The estimate, after the checks ``run`` makes (what it refuses, this refuses: exit 2);
    what would only hurt the run is a warning on stderr."""
    config: RunConfig = preflight(config_from_args(args))
    calibration = calibration_of(Run.open(args.calibrate_from)) if args.calibrate_from else None
    result = estimate(config, expect_output=args.expect_output, calibration=calibration)
    for warning in result.warnings:
        print(f"batchdeck: warning: {warning}", file=sys.stderr)
    if calibration is not None and not result.calibrated_items:
        print(
            f"batchdeck: warning: --calibrate-from {args.calibrate_from}: it counted no call of "
            "these models (nor steps) that used tokens: the figures are the estimate's own",
            file=sys.stderr,
        )
    if args.json:
        print_json(
            {
                "input": config.input,
                "workers": config.workers,
                **dataclasses.asdict(result),
                "cost_low": result.cost_low,
                "cost_likely": result.cost_likely,
                "cost_high": result.cost_high,
            }
        )
        return 0
    out = sys.stdout
    print(f"input       {config.input}", file=out)
    print(f"items       {result.items:,}  ({result.invalid:,} invalid)", file=out)
    print(f"calls       {result.calls:,}  ({len(config.models)} model(s))", file=out)
    print(
        f"tokens      ~{result.input_tokens:,} in, ~{result.output_tokens:,} out "
        f"(up to {result.output_tokens_max:,})",
        file=out,
    )
    for model in result.models:
        family = model.family
        schema = " + the schema" if config.output_schema and family.counts_schema else ""
        print(
            f"counted     {model.model}: ~{model.input_tokens:,} in at "
            f"{family.bytes_per_token:g} bytes a token + {family.per_message} a message + "
            f"{family.per_call} a call{schema} ({family.name}); ~{model.output_tokens:,} out, "
            f"{model.output_counted}",
            file=out,
        )
    for model in result.models:
        if model.cost_likely is None or model.cost_low is None or model.cost_high is None:
            print(f"cost        {model.model}: unknown (no price in the table)", file=out)
        else:
            way, other = ("batch", "online") if model.batch else ("online", "batch")
            print(
                f"cost        {model.model}: ~${model.cost_likely:.4f} likely; "
                f"${model.cost_low:.4f} (prompts only) to ${model.cost_high:.4f} "
                f"(every call writes --max-tokens: what the cap reserves) {way}; "
                f"~${model.other_likely:.4f} likely, ${model.other_low:.4f} to "
                f"${model.other_high:.4f} {other}",
                file=out,
            )
    if result.cached:
        print(f"cached      {result.cached:,} calls answered by the response cache, free", file=out)
    if result.calibrated_items:
        models = ", ".join(m.model for m in result.models if m.calibrated)
        print(
            f"calibrated  from {result.calibrated_items:,} sampled items of run "
            f"{result.calibrated_from}: {models} at the tokens their calls used",
            file=out,
        )
    print(
        f"time        ~{_duration(result.seconds)} at {config.workers} workers, "
        f"bound by {result.bound_by}, assuming {result.latency_s:.2f}s a call",
        file=out,
    )
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_runs(args: argparse.Namespace) -> int:
    runs = list_runs()
    if args.json:
        print_json([_run_json(r) for r in runs])
        return 0
    if not runs:
        print("no runs yet", file=sys.stderr)
        return 0
    models = {r.run_id: ",".join(r.models) for r in runs}
    width = max(len("MODEL"), *map(len, models.values()))
    header = f"{'RUN':<22} {'STARTED':<20} {'STATE':<11} {'DONE':>15} {'COST':>10}  "
    print(f"{header}{'MODEL':<{width}}  INPUT")
    for r in runs:
        if r.problem is not None:
            print(f"{r.run_id:<22} {'':<20} {'damaged':<11} {'':>15} {'':>10}  {r.problem}")
            continue
        total = "?" if r.total is None else f"{r.total:,}"
        state = r.state if r.holder is None else "running"
        print(
            f"{r.run_id:<22} {r.started[:19].replace('T', ' '):<20} {state:<11} "
            f"{f'{r.done:,}/{total}':>15} {f'${r.cost_usd:.4f}':>10}  "
            f"{models[r.run_id]:<{width}}  {r.input}"
        )
    return 0


def _run_json(summary: RunSummary) -> dict[str, object]:
    """A listed run for ``runs --json``: its summary, ``running`` when a process holds it."""
    fields = dataclasses.asdict(summary)
    fields["holder"] = None if summary.holder is None else str(summary.holder)
    if summary.holder is not None:
        fields["state"] = "running"
    return fields


def cmd_export(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    choice = _choice(args, status=args.status)
    if args.output and args.output != STDOUT:
        path = Path(args.output)
        try:
            rows = export_to_file(run, path, format_for(path, args.format), choice)
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
        print(f"wrote {rows:,} rows to {path}", file=sys.stderr)
    else:
        export_run(run, sys.stdout, args.format or "jsonl", choice)
    return 0


def _choice(args: argparse.Namespace, status: StatusFilter = "all") -> ExportChoice:
    return ExportChoice(
        status=status, raw_cells=args.csv_raw, prompt=args.export_prompt, attempts=args.attempts
    )


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command == "set":
        value = getpass.getpass(f"{args.provider} API key (not echoed): ").strip()
        if not value:
            raise ConfigError("no key given: nothing stored")
        where = keys.store_key(args.provider, value)
        print(f"stored the {args.provider} key in {where}", file=sys.stderr)
        return 0
    statuses = keys.key_status()
    if args.json:
        print_json(statuses)  # masked keys only: a KeyStatus never holds one
        return 0
    print(f"{'PROVIDER':<18} {'KEY':<14} SOURCE")
    for status in statuses:
        shown = status.masked if status.present else ("-" if not status.required else "missing")
        print(f"{status.provider:<18} {shown or '-':<14} {status.source or ''}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Copy the sample data to ``args.dir`` and run its tickets on simulate, as the README's
    first command does from a clone."""
    run_args = demo_run_args(Path(args.dir))
    code = cmd_run(run_args)
    print(
        f"\nnext: batchdeck runs; batchdeck export RUN; or open the app with `batchdeck` "
        f"and pick {run_args.input}",
        file=sys.stderr,
    )
    return code


def cmd_try(args: argparse.Namespace) -> int:
    """A few items on every model (the judge and the steps too), printed side by side."""
    if args.n < 1:
        raise ConfigError("--n must be at least 1")
    config = config_from_args(args)
    run = create_try(config, args.n, sample=args.sample)
    progress = Progress(sys.stderr, live=sys.stderr.isatty(), quiet=True)
    subscribers: list[Subscriber] = [progress]
    finished = anyio.run(_drive, run, subscribers, progress, False, False, None, False)
    print_answers(list(item_rows(run)), sys.stdout)
    print(file=sys.stdout)
    print_scores(compare_run(run), sys.stdout)
    print(file=sys.stdout)
    print_projection(config, run, sys.stdout)
    sys.stdout.flush()
    progress.write(progress.summary(finished) + "\n")
    return exit_code(finished)


COMMANDS = {
    "run": cmd_run,
    "resume": cmd_resume,
    "estimate": cmd_estimate,
    "runs": cmd_runs,
    "export": cmd_export,
    "keys": cmd_keys,
    "demo": cmd_demo,
    "batches": cmd_batches,
    "cancel": cmd_cancel,
    "cache": cmd_cache,
    "prices": cmd_prices,
    "compare": cmd_compare,
    "try": cmd_try,
}
