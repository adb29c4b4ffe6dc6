"""Saturation: does batchdeck run at a provider's rate limit without tripping it?

Two servers, each enforcing its limits as continuously refilled buckets (as the
real ones do), at 500 ms latency:

- ``minute bucket``: 600 requests/min and 100,000 tokens/min, each bucket holding
  a minute's worth (it starts full). Each request is charged max(input, max_tokens)
  = ~200 tokens, so tokens/min is the binding limit (~500 requests/min). Runs for
  --seconds (default 100).
- ``1-s bucket``: 600 requests/min enforced as 10 per second (the bucket holds one
  second of refill, as Anthropic documents "60 RPM may be enforced as 1 request per
  second"). Runs until --requests (default 600) are answered.

On each: batchdeck (the real CLI) learning its limits from the response headers,
batchdeck told ``--rpm`` (1-s bucket), and a naive client: a fixed number of
workers that retry a 429 after its retry-after, as a careful script would.

Prints, for each client, its accepted requests/min as a share of the binding
limit (target on the 1-s bucket: >= 97%), the share of what the server allowed
over the run that it used (the starting bucket plus the refill over the run's
span: a client that paces at the limit uses little of a minute bucket's starting
burst), and the share of requests answered 429 (target <= 0.5%).

    python -m tests.benchmarks.bench_ratelimit [--seconds 100] [--requests 600] [--workers 64]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

from tests.cli import COMMAND, REPO, env
from tests.fakeserver.fixtures import FakeServer, run_fake_server

LATENCY_MS = 500
MAX_TOKENS = 150
PROMPT = "Summarise this support ticket in one line. " + "The invoice was charged twice. " * 24


@dataclass(frozen=True)
class Server:
    name: str
    rpm: float
    tpm: float | None
    burst_s: float

    def options(self) -> dict[str, Any]:
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "burst_s": self.burst_s,
            "latency_ms": LATENCY_MS,
            "api_key": "test-key",
        }

    def binding_rpm(self) -> float:
        return self.rpm if self.tpm is None else min(self.rpm, self.tpm / charge_tokens())


MINUTE = Server("minute bucket", rpm=600, tpm=100_000, burst_s=60.0)
ONE_SECOND = Server("1-s bucket", rpm=600, tpm=None, burst_s=1.0)


def charge_tokens() -> int:
    """What the server charges a request: max(its input estimate, max_tokens)."""
    return max(-(-len(PROMPT.encode()) // 4), MAX_TOKENS)


def figures(server: Server, stats: dict[str, Any]) -> tuple[float, float, float]:
    """(accepted requests/min, its share of the binding limit, share of the allowance used)."""
    times = sorted(stats["accepted_times"])
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    limit = server.binding_rpm()
    rate = (len(times) - 1) / span * 60.0
    allowed = limit * server.burst_s / 60.0 + limit * span / 60.0  # the full bucket, then refill
    return rate, rate / limit, len(times) / allowed


def run_batchdeck(fake: FakeServer, work: Path, args: argparse.Namespace, *extra: str) -> None:
    source = work / "items.jsonl"
    count = args.requests if "--time-limit" not in extra else 20_000
    rows = (orjson.dumps({"id": f"r{i}", "context": PROMPT}) for i in range(count))
    source.write_bytes(b"\n".join(rows) + b"\n")
    command = [*COMMAND, "run", str(source), "--model", "openai:gpt-4o-mini", "--quiet"]
    command += ["--base-url", fake.openai_base_url, "--workers", str(args.workers)]
    subprocess.run(
        [*command, "--max-tokens", str(MAX_TOKENS), *extra],
        cwd=REPO,
        env=env(work / "home", OPENAI_API_KEY="test-key"),
        check=False,
        capture_output=True,
    )


async def naive(fake: FakeServer, workers: int, seconds: float | None, requests: int) -> None:
    """``workers`` loops posting at once, each 429 retried after its retry-after, until
    ``seconds`` have passed (or, without seconds, ``requests`` have been answered)."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_completion_tokens": MAX_TOKENS,
    }
    deadline = time.monotonic() + seconds if seconds is not None else None
    answered = 0
    headers = {"authorization": "Bearer test-key"}
    limits = httpx.Limits(max_connections=workers)

    def going() -> bool:
        if deadline is not None:
            return time.monotonic() < deadline
        return answered < requests

    async with httpx.AsyncClient(base_url=fake.openai_base_url, limits=limits) as client:

        async def worker() -> None:
            nonlocal answered
            while going():
                response = await client.post("/chat/completions", json=body, headers=headers)
                if response.status_code == 429:
                    await anyio.sleep(float(response.headers.get("retry-after", "1")))
                else:
                    answered += 1

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)


def report(name: str, server: Server, fake: FakeServer) -> None:
    stats = fake.stats()
    rate, of_limit, of_allowance = figures(server, stats)
    requests, throttled = stats["requests"], stats["rate_limited"]
    print(
        f"  {name:<22} {rate:6.1f} req/min = {100 * of_limit:5.1f}% of the limit, "
        f"{100 * of_allowance:5.1f}% of the allowance   "
        f"429s: {throttled:5d} of {requests:6d} requests = {100 * throttled / requests:.2f}%"
    )


def case(
    server: Server,
    clients: Sequence[tuple[str, Sequence[str] | None]],
    args: argparse.Namespace,
    seconds: float | None,
) -> None:
    """Each client on a fresh server; ``None`` arguments mean the naive client."""
    limit = server.binding_rpm()
    length = f"{seconds:.0f} s each" if seconds is not None else f"{args.requests} requests each"
    tpm = f", {server.tpm:,.0f} TPM" if server.tpm is not None else ""
    print(
        f"{server.name}: {server.rpm:.0f} RPM{tpm}, bucket of {server.burst_s:g} s, "
        f"{LATENCY_MS} ms; binding {limit:.0f} req/min; {args.workers} workers, {length}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, extra) in enumerate(clients):
            with run_fake_server(**server.options()) as fake:
                if extra is None:
                    anyio.run(naive, fake, args.workers, seconds, args.requests)
                else:
                    work = Path(tmp) / str(number)
                    work.mkdir()
                    timed = ("--time-limit", str(seconds)) if seconds is not None else ()
                    run_batchdeck(fake, work, args, *timed, *extra)
                report(name, server, fake)
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=100.0, help="minute bucket: run time")
    parser.add_argument("--requests", type=int, default=600, help="1-s bucket: requests")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--only", choices=("minute", "second"))
    args = parser.parse_args()
    print(f"each request is charged {charge_tokens()} tokens")
    if args.only != "second":
        clients = [("batchdeck (headers)", []), ("batchdeck --burst 60", ["--burst", "60"])]
        case(MINUTE, [*clients, ("naive", None)], args, args.seconds)
    if args.only != "minute":
        clients = [("batchdeck (headers)", []), ("batchdeck --rpm 600", ["--rpm", "600"])]
        case(ONE_SECOND, [*clients, ("naive", None)], args, None)


if __name__ == "__main__":
    main()
