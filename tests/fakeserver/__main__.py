"""``python -m tests.fakeserver``: serve until SIGTERM/SIGINT, after one ``READY <url>`` line.

Every scalar ``ServerConfig`` field is a flag (``latency_ms`` -> ``--latency-ms``),
generated from the model so the CLI can never drift from ``/_config``; mappings
have their own flags (``--fault 500=0.05``, ``--missing-model NAME``) or go
through ``--config JSON``, which the fixtures use to pass everything at once.
Values are validated by the model: a bad flag exits with status 2 before the
READY line, so a waiting fixture fails fast instead of timing out.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from tests.fakeserver._config import ServerConfig
from tests.fakeserver._server import READY_PREFIX, serving

_STRUCTURED = ("faults", "missing_models", "model_limits")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakeserver",
        description="Fake OpenAI/Anthropic/Gemini server on 127.0.0.1 for tests and benchmarks.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--config", type=orjson.loads, default={}, help="JSON object of options")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="KIND=RATE", help="random fault rate"
    )
    parser.add_argument("--missing-model", action="append", default=[], metavar="MODEL")
    for name, field in ServerConfig.model_fields.items():
        if name not in _STRUCTURED:
            flag = "--" + name.replace("_", "-")
            parser.add_argument(flag, dest=name, default=None, help=field.description)
    return parser


def _config(args: argparse.Namespace) -> ServerConfig:
    changes: dict[str, Any] = dict(args.config)
    for name in ServerConfig.model_fields:
        value = getattr(args, name, None)
        if name not in _STRUCTURED and value is not None:
            changes[name] = value
    if args.fault:
        faults = dict(changes.get("faults", {}))
        for item in args.fault:
            kind, _, rate = item.partition("=")
            faults[kind] = rate
        changes["faults"] = faults
    if args.missing_model:
        changes["missing_models"] = [*changes.get("missing_models", ()), *args.missing_model]
    return ServerConfig().updated(changes)


async def _serve_until_signalled(config: ServerConfig, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serving(config, port=port) as (url, _):
        print(f"{READY_PREFIX}{url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except ValidationError as exc:
        parser.error(str(exc))
    asyncio.run(_serve_until_signalled(config, args.port))


if __name__ == "__main__":
    main()
