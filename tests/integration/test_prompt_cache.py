"""Provider prompt caching through the real CLI and real HTTP: the fake server caches as the
providers do, and what batchdeck records and charges is what the server reported, at the
published cache rates (genai-prices' calculator over the server's own books)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from genai_prices import Usage as PublishedUsage
from genai_prices import calc_price

from engine import log
from tests.cli import batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-canary-prompt-cache-0123"
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
GENAI_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
SYSTEM = "Label the ticket as billing, bug or other, in one word. " * 80
"""About 1,100 tokens: long enough for every provider to cache."""


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY) as fake:
        yield fake


def run(server: FakeServer, provider: str, home: Path, *extra: str) -> tuple[str, Path]:
    source = home / "items.jsonl"
    rows = [{"id": f"t{i}", "context": f"ticket number {i}"} for i in range(4)]
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    url = server.openai_base_url if provider == "openai" else server.url
    done = batchdeck(
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}", "--system", SYSTEM,
        "--base-url", url, "--workers", "1", *extra,
        home=home, extra_env={KEY_ENV[provider]: KEY}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [log_path] = (home / "runs").glob("*/log.jsonl")
    return done.stderr, log_path


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_cached_input_is_recorded_priced_and_summed_up(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    server.reset()
    summary, log_path = run(server, provider, tmp_path)
    books = server.stats()["by_model"][f"{provider}:{MODELS[provider]}"]
    assert books["cached_tokens"] > 0  # items after the first read the system prompt back
    results = list(log.iter_results(log_path))
    assert sum(r.usage.cached_tokens for r in results) == books["cached_tokens"]
    assert sum(r.usage.cache_write_tokens for r in results) == books["cache_write_tokens"]
    published = calc_price(
        PublishedUsage(
            input_tokens=books["input_tokens"],
            output_tokens=books["output_tokens"],
            cache_read_tokens=books["cached_tokens"],
            cache_write_tokens=books["cache_write_tokens"],
        ),
        MODELS[provider],
        provider_id=GENAI_PROVIDER[provider],
        genai_request_timestamp=datetime.now(UTC),
    ).total_price
    assert log.scan(log_path).cost_usd == pytest.approx(float(published), rel=1e-9)
    saved = sum(r.cache_saved_usd for r in results)
    assert saved > 0
    assert f"prompt cache {books['cached_tokens']:,} input tokens" in summary
    assert f"saving ${saved:.4f}" in summary


def test_prompt_cache_off_sends_no_mark_and_anthropic_caches_nothing(
    server: FakeServer, tmp_path: Path
) -> None:
    server.reset()
    summary, log_path = run(server, "anthropic", tmp_path, "--prompt-cache", "off")
    books = server.stats()["by_model"][f"anthropic:{MODELS['anthropic']}"]
    assert books["cached_tokens"] == books["cache_write_tokens"] == 0
    assert "prompt cache" not in summary
    assert all(not r.cache_saved_usd for r in log.iter_results(log_path))
