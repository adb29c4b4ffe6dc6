"""The response cache's cost: a lookup per item, and a whole run the cache answers.

Prints (medians, this machine):
  1. the cost of one lookup as a run makes it: the request's key (its body built and
     hashed) plus the read from a cache of ``--items`` answers (target <= 50 us), and the
     read alone;
  2. items/s of a ``--items`` run that the cache answers whole (target >= 10,000), against
     the fake server, which must see no request; beside it, the same items on ``simulate``
     at 0 ms, which never reads the cache: the engine's own pace without it.

    python -m tests.benchmarks.bench_cache [--items 100000] [--runs 3] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from engine._cache import QUEUE_ROWS, Answer, ResponseCache, RunCache, request_key
from engine._config import RunConfig, make_config
from engine._items import Item
from engine._lanes import lanes_for
from engine._plan import call_request
from engine._results import Usage
from engine._template import PromptTemplate, render_item
from engine.providers import request_identities
from engine.readers import read_items
from tests.benchmarks._common import run_child, write_items
from tests.fakeserver.fixtures import run_fake_server

MODEL = "openai:gpt-4o-mini"
PROMPT = "Classify this support ticket: {context}"

RUN_CODE = """
import sys, time, anyio
from pathlib import Path
from engine._config import make_config
from engine._run import Run

source, run_dir, model, base_url, workers = sys.argv[1:6]
config = make_config(
    input=source, prompt=sys.argv[6], models=(model,), base_url=base_url or None,
    sim={"latency_ms": 0}, workers=int(workers), durability="fsync",
)
run = Run.create(config, Path(run_dir))
start = time.perf_counter()
result = anyio.run(run.execute, [])
elapsed = time.perf_counter() - start
print(result.ok, result.cached, elapsed)
"""


def prompts(source: Path) -> list[str]:
    template = PromptTemplate.parse(PROMPT)
    return [render_item(template, i.fields) for i in read_items(str(source)) if isinstance(i, Item)]


def fill(config: RunConfig, texts: list[str]) -> list[bytes]:
    """Store an answer for every prompt, keyed as the run will key it; returns the keys."""
    identity = request_identities({MODEL: config.base_url})[MODEL]
    lane = lanes_for(config, PromptTemplate.parse(PROMPT))[MODEL]
    keys = []
    step = QUEUE_ROWS // 2  # within what one store's queue holds
    for chunk in (texts[i : i + step] for i in range(0, len(texts), step)):
        store = ResponseCache.open(config.cache_max_gb)
        for text in chunk:
            key = request_key(identity(call_request(config, lane, text, config.max_tokens)))
            store.put(key, Answer(f"label: billing ({len(text)})", None, "stop", Usage(60, 12)))
            keys.append(key)
        store.close()
    return keys


def lookups(config: RunConfig, texts: list[str], runs: int) -> tuple[float, float]:
    """Median microseconds per item: key + read, and the read alone."""
    identity = request_identities({MODEL: config.base_url})[MODEL]
    store = ResponseCache.open(config.cache_max_gb)
    cache = RunCache(store, {MODEL: identity}, read=True, only=False, warn=print)
    lane = lanes_for(config, PromptTemplate.parse(PROMPT))[MODEL]
    whole, read = [], []
    for _ in range(runs):
        start = time.perf_counter()
        keys = []
        for text in texts:
            key = cache.key(MODEL, call_request(config, lane, text, config.max_tokens))
            assert key is not None and cache.lookup(key) is not None
            keys.append(key)
        whole.append((time.perf_counter() - start) / len(texts) * 1e6)
        start = time.perf_counter()
        for key in keys:
            store.get(key)
        read.append((time.perf_counter() - start) / len(texts) * 1e6)
    store.close()
    return statistics.median(whole), statistics.median(read)


def throughput(source: Path, work: Path, model: str, base_url: str, workers: int) -> float:
    run_dir = work / f"run-{time.monotonic_ns()}"
    out, _ = run_child(RUN_CODE, str(source), str(run_dir), model, base_url, str(workers), PROMPT)
    ok, cached, elapsed = out.split()
    if model == MODEL and int(cached) != int(ok):
        raise SystemExit(f"only {cached} of {ok} answers came from the cache")
    return int(ok) / float(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, run_fake_server() as server:
        work = Path(tmp)
        os.environ["BATCHDECK_HOME"] = str(work / "home")  # the runs' children inherit it
        os.environ["OPENAI_API_KEY"] = "sk-bench-cache-0123456789"
        source = write_items(work / "items.jsonl", args.items)
        config = make_config(
            input=str(source), prompt=PROMPT, models=(MODEL,), base_url=server.openai_base_url
        )
        texts = prompts(source)
        fill(config, texts)
        whole, read = lookups(config, texts, args.runs)
        print(f"response cache, {args.items:,} answers stored:")
        print(f"  lookup per item (key + read): {whole:>7.1f} us  (target <= 50)")
        print(f"  read alone:                   {read:>7.1f} us")
        cached_all, plain_all = [], []
        for _ in range(args.runs):  # alternated, so the machine's load hits both alike
            cached_all.append(throughput(source, work, MODEL, server.openai_base_url, args.workers))
            plain_all.append(throughput(source, work, "simulate:gpt-4o-mini", "", args.workers))
        sent = server.stats()["requests"]
        cached, plain = statistics.median(cached_all), statistics.median(plain_all)
        print(f"{args.items:,}-item run, {args.workers} workers, log fsyncing in groups:")
        print(f"  answered by the cache:  {cached:>9,.0f} items/s  (runs: {_fmt(cached_all)})")
        print(f"  simulate at 0 ms:       {plain:>9,.0f} items/s  (runs: {_fmt(plain_all)})")
        print(f"  requests the fake server saw: {sent}")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
