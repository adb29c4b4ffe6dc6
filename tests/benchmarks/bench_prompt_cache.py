"""What batchdeck's meter charges for a run whose system prompt the provider caches, printed
beside what the providers' published cache prices say those calls cost.

Run from the repository root: ``python -m tests.benchmarks.bench_prompt_cache``
(``--items``, ``--workers``). For each provider, the real ``batchdeck run`` sends
``--items`` items (1,000) with one shared ~2,000-token system prompt to the fake
server, which reports cache reads and writes as that provider does (Anthropic
writes the marked prefix once, then reads it; OpenAI and Gemini cache the long
system prompt on their own). The published price is genai-prices' own
calculator over the tokens the server reported (its books, not batchdeck's),
with the cache rates; the figure to meet: the meter within one cent of it. The
same tokens at plain input rates are printed too: what caching saved.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from genai_prices import Usage as PublishedUsage
from genai_prices import calc_price

from engine import log
from tests.benchmarks._common import REPO, write_items
from tests.fakeserver.fixtures import run_fake_server

MODELS = ("anthropic:claude-haiku-4-5", "openai:gpt-5-mini", "gemini:gemini-2.5-flash")
KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}
GENAI_PROVIDER = {"anthropic": "anthropic", "openai": "openai", "gemini": "google"}
SYSTEM = (
    "You sort customer support tickets for a software company. Read the ticket, decide "
    "whether it is about billing, a bug, an account problem or something else, and answer "
    "with that one word. "
) * 42
"""About 2,000 tokens (four bytes a token), shared by every item."""
TARGET_USD = 0.01


def published(model: str, books: dict[str, int], *, cached: bool = True) -> float:
    provider, _, bare = model.partition(":")
    usage = PublishedUsage(
        input_tokens=books["input_tokens"],
        output_tokens=books["output_tokens"],
        cache_read_tokens=books["cached_tokens"] if cached else 0,
        cache_write_tokens=books["cache_write_tokens"] if cached else 0,
    )
    calc = calc_price(
        usage,
        bare,
        provider_id=GENAI_PROVIDER[provider],
        genai_request_timestamp=datetime.now(UTC),
    )
    return float(calc.total_price)


def run_one(model: str, items: Path, base_url: str, home: Path, workers: int) -> float:
    provider = model.partition(":")[0]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(BATCHDECK_HOME=str(home), PYTHONPATH=str(REPO), **{KEYS[provider]: "test-key"})
    command = [
        *(sys.executable, "-m", "tui.launch", "run", str(items)),
        *("--model", model, "--system", SYSTEM, "--base-url", base_url),
        *("--workers", str(workers), "--max-tokens", "64", "--prompt", "Ticket: {context}"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{model}: batchdeck exited {done.returncode}: {done.stderr[-500:]}")
    [log_path] = (home / "runs").glob("*/log.jsonl")
    return log.scan(log_path).cost_usd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    missed = 0
    with tempfile.TemporaryDirectory() as tmp, run_fake_server(output_tokens=8) as server:
        items = write_items(Path(tmp) / "items.jsonl", args.items)
        for model in MODELS:
            server.reset()
            provider, _, bare = model.partition(":")
            url = server.url + ("/v1" if provider == "openai" else "")
            metered = run_one(model, items, url, Path(tmp) / provider, args.workers)
            books = server.stats()["by_model"][f"{provider}:{bare}"]
            price = published(model, books)
            plain = published(model, books, cached=False)
            off = abs(metered - price)
            missed += off > TARGET_USD
            print(
                f"{model}: {args.items:,} items, {books['input_tokens']:,} input tokens of which "
                f"{books['cached_tokens']:,} read from the cache and "
                f"{books['cache_write_tokens']:,} written to it\n"
                f"  batchdeck's meter ${metered:.4f}; published cache prices ${price:.4f} "
                f"(off by ${off:.6f}, target <= ${TARGET_USD}); at plain input rates "
                f"${plain:.4f} (caching saved ${plain - price:.4f})"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
