"""The response cache in the engine, over real HTTP to the fake server: a request answered
once is answered again from the cache (no request, $0, no reservation, ``cached``), any
change to what is sent misses, ``--no-cache`` and ``--cache-only`` do what they say, and a
damaged cache file costs one warning, never a result."""

from __future__ import annotations

import sqlite3
import zlib
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from engine._cache import Answer, ResponseCache, cache_path, request_key
from engine._estimate import estimate
from engine._events import CacheWarning, CostUpdated, Event, ItemFinished, ItemStarted
from engine._results import ItemResult, Usage
from engine._run import Run
from tests.engine.scripted import items, make_run
from tests.fakeserver.fixtures import FakeServer, serve_in_process

pytestmark = pytest.mark.anyio

KEY = "sk-cache-test-0123456789abcdef"
MODEL = "openai:gpt-4o-mini"
N = 12


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with serve_in_process(api_key=KEY, latency_ms=0) as fake:
        yield fake


def new_run(tmp_path: Path, server: FakeServer, name: str, **config: Any) -> Run:
    rows = config.pop("rows", items(N))
    (tmp_path / name).mkdir()
    run = make_run(
        tmp_path / name,
        rows,
        models=(MODEL,),
        base_url=server.openai_base_url,
        **config,
    )
    return run


async def execute(run: Run, **options: Any) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    finished = await run.execute([events.append], **options)
    return finished, events


def results(events: list[Event]) -> dict[str, ItemResult]:
    return {e.result.id: e.result for e in events if isinstance(e, ItemFinished)}


def requests(server: FakeServer) -> int:
    count: int = server.stats()["requests"]
    return count


def answers_its_prompt(result: ItemResult) -> bool:
    """The fake server's answer starts with the CRC32 of the prompt it was sent."""
    prompt = result.fields["context"]
    return (result.output or "").startswith(f"[{zlib.crc32(prompt.encode()):08x}]")


async def test_a_second_identical_run_sends_nothing_and_costs_nothing(
    tmp_path: Path, server: FakeServer
) -> None:
    first, first_events = await execute(new_run(tmp_path, server, "a", prompt="{context}"))
    assert first.ok == N and first.cost_usd > 0 and first.cached == 0
    assert requests(server) == N
    server.reset()

    second, events = await execute(
        new_run(tmp_path, server, "b", prompt="{context}", max_cost=1e-9)
    )
    assert requests(server) == 0
    assert second.ok == N and second.cost_usd == 0 and second.cached == N
    assert second.saved_usd == pytest.approx(first.cost_usd)
    got, before = results(events), results(first_events)
    assert all(r.cached and r.cost_usd == 0 and r.attempts == 0 for r in got.values())
    assert {i: r.output for i, r in got.items()} == {i: r.output for i, r in before.items()}
    assert all(answers_its_prompt(r) for r in got.values())
    # No attempt started, and no money was ever held for one (a cap of a nano-dollar passed).
    assert not [e for e in events if isinstance(e, ItemStarted)]
    assert all(e.reserved_usd == 0 for e in events if isinstance(e, CostUpdated))


@pytest.mark.parametrize(
    "change",
    [
        {"system": "Be brief."},
        {"prompt": "Label: {context}"},
        {"max_tokens": 100},
        {"temperature": 0.5},
        {"stop": ("END",)},
        {"params": {"top_p": 0.5}},
        {"output_schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_changing_what_is_sent_misses(
    tmp_path: Path, server: FakeServer, change: dict[str, Any]
) -> None:
    base = {"prompt": "{context}"}
    await execute(new_run(tmp_path, server, "a", **base))
    server.reset()
    finished, _ = await execute(new_run(tmp_path, server, "b", **{**base, **change}))
    assert finished.cached == 0 and requests(server) == N


async def test_no_cache_asks_again_and_stores_the_new_answers(
    tmp_path: Path, server: FakeServer
) -> None:
    await execute(new_run(tmp_path, server, "a"))
    server.reset()
    refreshed, _ = await execute(new_run(tmp_path, server, "b", cache=False))
    assert refreshed.cached == 0 and requests(server) == N
    server.reset()
    again, _ = await execute(new_run(tmp_path, server, "c"))
    assert again.cached == N and requests(server) == 0


async def test_cache_only_sends_nothing_and_skips_what_the_cache_lacks(
    tmp_path: Path, server: FakeServer
) -> None:
    await execute(new_run(tmp_path, server, "a", rows=items(N // 2)))
    server.reset()
    finished, events = await execute(new_run(tmp_path, server, "b", cache_only=True))
    assert requests(server) == 0
    got = results(events)
    assert finished.ok == finished.cached == N // 2 and finished.skipped == N - N // 2
    skipped = [r for r in got.values() if r.status == "skipped"]
    assert all(r.error is not None and r.error.kind == "not_cached" for r in skipped)


async def test_a_retry_of_chosen_items_asks_for_a_new_answer(
    tmp_path: Path, server: FakeServer
) -> None:
    run = new_run(tmp_path, server, "a")
    await execute(run)
    server.reset()
    retried, _ = await execute(Run.open(run.run_dir), only=[(MODEL, "item-0")])
    assert retried.cached == 0 and requests(server) == 1


async def test_cached_results_survive_in_the_log(tmp_path: Path, server: FakeServer) -> None:
    await execute(new_run(tmp_path, server, "a"))
    run = new_run(tmp_path, server, "b")
    await execute(run)
    _, replayed = await execute_replay(run)
    got = results(replayed)
    assert len(got) == N and all(r.cached and r.saved_usd > 0 for r in got.values())


async def execute_replay(run: Run) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    finished = await Run.open(run.run_dir).replay([events.append])
    return finished, events


async def test_a_damaged_cache_file_is_one_warning_and_the_run_goes_on(
    tmp_path: Path, server: FakeServer
) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it is garbage " * 200)
    finished, events = await execute(new_run(tmp_path, server, "a"))
    warnings = [e for e in events if isinstance(e, CacheWarning)]
    assert finished.state == "finished" and finished.ok == N and requests(server) == N
    assert len(warnings) == 1 and str(path) in warnings[0].message


async def test_an_answer_altered_on_disk_is_a_miss_never_a_wrong_answer(
    tmp_path: Path, server: FakeServer
) -> None:
    await execute(new_run(tmp_path, server, "a"))
    with closing(sqlite3.connect(cache_path())) as db, db:  # alter answers, keep checksums
        db.execute(
            "UPDATE answers SET answer = CAST(replace(CAST(answer AS TEXT), '[', '{') AS BLOB) "
            "WHERE rowid % 2 = 0"
        )
        db.execute("UPDATE answers SET answer = CAST(answer AS TEXT) WHERE rowid % 2 = 1")
    server.reset()
    finished, events = await execute(new_run(tmp_path, server, "b"))
    assert finished.cached == 0 and requests(server) == N
    assert all(answers_its_prompt(r) for r in results(events).values())


def test_the_store_keeps_the_least_recently_used_out_first(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    answer = Answer("x" * 4000, None, "stop", Usage(1, 2))
    keys = [request_key(b"%d" % i) for i in range(400)]
    cache = ResponseCache.open(max_gb=1.0, path=path)
    for key in keys:
        cache.put(key, answer)
    cache.close()
    with closing(sqlite3.connect(path)) as db, db:  # all but the first ten were used long ago
        db.execute("UPDATE answers SET used = used - 100000")
        db.executemany(
            "UPDATE answers SET used = used + 100000 WHERE key = ?", [(k,) for k in keys[:10]]
        )
    small = ResponseCache.open(max_gb=600_000 / (1 << 30), path=path)
    small.put(request_key(b"new"), answer)
    small.close()
    reader = ResponseCache.open(max_gb=1.0, path=path)
    kept = [key for key in keys if reader.get(key) is not None]
    assert reader.get(request_key(b"new")) == answer
    assert set(keys[:10]) <= set(kept) and 10 < len(kept) < 200
    assert path.stat().st_size < 1_000_000
    reader.close()


async def test_the_estimate_counts_what_the_cache_will_answer_as_free(
    tmp_path: Path, server: FakeServer
) -> None:
    await execute(new_run(tmp_path, server, "a", rows=items(N // 3)))
    config = new_run(tmp_path, server, "b").config
    counted = estimate(config)
    assert counted.cached == N // 3
    fresh = estimate(config.model_copy(update={"cache": False}))
    assert fresh.cached == 0
    assert counted.cost_high == pytest.approx(fresh.cost_high * (N - N // 3) / N, rel=0.05)
    assert counted.cost_low is not None and counted.cost_low < (fresh.cost_low or 0)
