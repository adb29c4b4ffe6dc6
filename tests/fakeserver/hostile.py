"""A hostile OpenAI-compatible server for the money cap: it lies about usage, and keeps books.

Kept apart from the main fake server (``_app``), whose pipeline models honest
providers, so that the attacks on the cap live in one place: an answer with no
usage, with usage that is negative, 10^30, NaN, a string or a float, or honest
usage for more output than the request allowed (``overbill``). ``mixed`` takes
each of those in turn. Whatever it reports, it bills what it really produced
and counts it (``GET /_stats``): that ledger is what a test compares with the cap.
``invalid_first`` answers the first N attempts of each prompt with text that is
not JSON (billed), so a run with a schema pays for attempts it then retries.

    python -m tests.fakeserver.hostile --config '{"usage": "missing"}'

prints ``READY http://127.0.0.1:PORT`` and serves ``/v1/chat/completions``
until SIGTERM; ``hostile_server(**options)`` runs it as a subprocess for a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from tests.fakeserver._server import LOOPBACK, READY_PREFIX

Lie = Literal["honest", "missing", "negative", "huge", "nan", "string", "float", "overbill"]
LIES: tuple[Lie, ...] = ("missing", "negative", "huge", "nan", "string", "float", "overbill")


class Hostility(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    usage: Lie | Literal["mixed"] = "honest"
    overbill: float = Field(3.0, gt=1)
    """``overbill``: the output billed (and reported) is this many times ``max_tokens``."""
    output_tokens: int = Field(16, ge=0)
    """Output produced otherwise (at most the request's limit)."""
    invalid_first: int = Field(0, ge=0)
    latency_ms: float = Field(0.0, ge=0)


class Ledger:
    """What the server billed: the truth, whatever it told the client."""

    def __init__(self) -> None:
        self.requests = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.attempts: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def create_app(hostility: Hostility) -> web.Application:
    ledger = Ledger()

    async def complete(request: web.Request) -> web.Response:
        payload = await request.json()
        text = "\n".join(str(m.get("content", "")) for m in payload.get("messages", []))
        limit = payload.get("max_completion_tokens") or payload.get("max_tokens") or 16
        if hostility.latency_ms:
            await asyncio.sleep(hostility.latency_ms / 1000)
        lie = hostility.usage
        if lie == "mixed":
            lie = LIES[ledger.requests % len(LIES)]
        ledger.requests += 1
        ledger.attempts[text] += 1
        input_tokens = math.ceil(len(text.encode()) / 4)
        output_tokens = min(hostility.output_tokens, limit)
        if lie == "overbill":
            output_tokens = math.ceil(limit * hostility.overbill)
        ledger.input_tokens += input_tokens
        ledger.output_tokens += output_tokens
        valid = ledger.attempts[text] > hostility.invalid_first
        body: dict[str, Any] = {
            "id": f"chatcmpl-{ledger.requests}",
            "object": "chat.completion",
            "model": payload.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": '{"ok": true}' if valid else "no"},
                    "finish_reason": "stop",
                }
            ],
        }
        reported: Any = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens}
        if lie == "negative":
            reported = {"prompt_tokens": -input_tokens, "completion_tokens": -(10**6)}
        elif lie == "huge":
            reported = {"prompt_tokens": 10**30, "completion_tokens": 10**30}
        elif lie == "nan":
            reported = {"prompt_tokens": math.nan, "completion_tokens": math.nan}
        elif lie == "string":
            reported = {"prompt_tokens": str(input_tokens), "completion_tokens": "lots"}
        elif lie == "float":
            reported = {"prompt_tokens": input_tokens + 0.5, "completion_tokens": 1e-3}
        if lie != "missing":
            body["usage"] = reported
        # json, not orjson: it writes 10**30 and NaN as a careless server would
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(ledger.snapshot())

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/_stats", stats)
    return app


async def _serve(hostility: Hostility) -> None:
    runner = web.AppRunner(create_app(hostility), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, 0).start()
    host, port = runner.addresses[0][:2]
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class HostileServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.base_url = f"{url}/v1"

    def billed(self) -> dict[str, Any]:
        """The ledger: requests, and the input and output tokens really billed."""
        answer: dict[str, Any] = httpx.get(f"{self.url}/_stats", timeout=10).json()
        return answer


@contextmanager
def hostile_server(**options: Any) -> Iterator[HostileServer]:
    """Run the hostile server as a subprocess with ``options`` (``Hostility`` fields)."""
    # Imported here: the server process itself must not import pytest (fixtures does).
    from tests.fakeserver.fixtures import READY_TIMEOUT_S, REPO_ROOT, _stop, _wait_ready

    config = Hostility(**options)
    command = [sys.executable, "-m", "tests.fakeserver.hostile", config.model_dump_json()]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        yield HostileServer(_wait_ready(process, process.stdout, READY_TIMEOUT_S))
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeserver.hostile")
    parser.add_argument("config", nargs="?", default="{}", help="Hostility fields as JSON")
    args = parser.parse_args()
    asyncio.run(_serve(Hostility.model_validate_json(args.config)))


if __name__ == "__main__":
    main()
