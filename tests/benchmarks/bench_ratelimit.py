"""Saturation: does batchdeck run at a provider's rate limit without tripping it?

Against the fake server enforcing 600 requests/min and 100,000 tokens/min (a
continuously refilled bucket, as the real ones are) at 500 ms latency, for
--seconds (default 100): batchdeck (the real CLI, limits learned from the
response headers, nothing given on the command line) and a naive client (a
fixed number of workers that retry a 429 after its retry-after, as a careful
script would). Each request is charged max(input, max_tokens) = ~200 tokens,
so tokens/min is the binding limit (~500 requests/min).

The server's buckets start full (a minute's worth, as the real ones), so what
it allows over a run of span T is one minute's burst plus T of refill. Prints,
for each client, the share of that allowance it used on the binding limit
(target >= 95%), its accepted requests/min, and the share of requests
answered 429 (target <= 0.5%).

    python tests/benchmarks/bench_ratelimit.py [--seconds 100] [--workers 64]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
import orjson

from tests.cli import COMMAND, REPO, env
from tests.fakeserver.fixtures import FakeServer, run_fake_server

RPM, TPM, LATENCY_MS = 600, 100_000, 500
MAX_TOKENS = 150
PROMPT = "Summarise this support ticket in one line. " + "The invoice was charged twice. " * 24


def charge_tokens() -> int:
    """What the server charges a request: max(its input estimate, max_tokens)."""
    return max(-(-len(PROMPT.encode()) // 4), MAX_TOKENS)


def binding_rpm() -> float:
    return min(RPM, TPM / charge_tokens())


def utilisation(stats: dict) -> tuple[float, float]:
    """(share of what the binding limit allowed that was used, accepted requests per minute)."""
    times = sorted(stats["accepted_times"])
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    limit = binding_rpm()
    allowed = limit + limit * span / 60.0  # a full bucket at the start, then its refill
    return len(times) / allowed, len(times) / span * 60.0


def run_batchdeck(server: FakeServer, seconds: float, workers: int, work: Path) -> None:
    source = work / "items.jsonl"
    rows = (orjson.dumps({"id": f"r{i}", "context": PROMPT}) for i in range(20_000))
    source.write_bytes(b"\n".join(rows) + b"\n")
    subprocess.run(
        [
            *COMMAND,
            "run",
            str(source),
            "--model",
            "openai:gpt-4o-mini",
            "--base-url",
            server.openai_base_url,
            "--workers",
            str(workers),
            "--max-tokens",
            str(MAX_TOKENS),
            "--time-limit",
            str(seconds),
            "--quiet",
        ],  # fmt: skip
        cwd=REPO,
        env=env(work / "home", OPENAI_API_KEY="test-key"),
        check=False,
        capture_output=True,
    )


async def naive(server: FakeServer, seconds: float, workers: int) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_completion_tokens": MAX_TOKENS,
    }
    deadline = time.monotonic() + seconds
    headers = {"authorization": "Bearer test-key"}
    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=server.openai_base_url, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                response = await client.post("/chat/completions", json=body, headers=headers)
                if response.status_code == 429:
                    await anyio.sleep(float(response.headers.get("retry-after", "1")))

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)


def report(name: str, server: FakeServer) -> None:
    stats = server.stats()
    used, rate = utilisation(stats)
    requests, throttled = stats["requests"], stats["rate_limited"]
    print(
        f"  {name:<10} used {100 * used:5.1f}% of the allowance, {rate:6.1f} req/min   "
        f"429s: {throttled:5d} of {requests:6d} requests = {100 * throttled / requests:.2f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    print(
        f"fake server: {RPM} RPM, {TPM:,} TPM, {LATENCY_MS} ms; {charge_tokens()} tokens charged "
        f"a request -> binding {binding_rpm():.0f} req/min; {args.workers} workers, "
        f"{args.seconds:.0f} s each"
    )
    options = {"rpm": RPM, "tpm": TPM, "latency_ms": LATENCY_MS, "api_key": "test-key"}
    with tempfile.TemporaryDirectory() as tmp:
        with run_fake_server(**options) as server:
            run_batchdeck(server, args.seconds, args.workers, Path(tmp))
            report("batchdeck", server)
        with run_fake_server(**options) as server:
            anyio.run(naive, server, args.seconds, args.workers)
            report("naive", server)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
