"""Each provider's batch adapter against the fake server's batch endpoints, over real HTTP.

The server runs in the test's loop on 127.0.0.1. Jobs progress on the server's
batch clock, which each test moves forward (``advance_batch_clock``) instead of
waiting: submit, poll through the states, read results, find a job by its
token, cancel, and expire half done, for every provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engine._errors import ProviderError
from engine.providers import (
    BatchApi,
    BatchRequest,
    CallRequest,
    CallResult,
    Outcome,
    Provider,
    make_provider,
)
from tests.fakeserver.fixtures import FakeServer, serve_in_process

pytestmark = pytest.mark.anyio

QUEUE_S = 10.0
RUN_S = 100.0
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
}
PROVIDERS = ["openai", "anthropic", "gemini"]
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["refund", "bug"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def base_url(server: FakeServer, provider: str) -> str:
    return server.openai_base_url if provider == "openai" else server.url


def batch(provider: str, n: int, prefix: str = "item") -> list[BatchRequest]:
    return [
        BatchRequest(
            f"{prefix}-{i}",
            CallRequest(
                model=MODELS[provider],
                prompt=f"Summarise ticket number {i}",
                system="Answer in one line.",
                max_tokens=64,
                schema=SCHEMA if i % 2 else None,
            ),
        )
        for i in range(n)
    ]


@asynccontextmanager
async def batch_api(
    provider: str, **options: Any
) -> AsyncIterator[tuple[FakeServer, Provider, BatchApi]]:
    settings = {"batch_queue_s": QUEUE_S, "batch_s": RUN_S, **options}
    async with serve_in_process(**settings) as server:
        built = make_provider(provider, base_url=base_url(server, provider), key="test-key")
        try:
            api = built.batch_api()
            assert api is not None
            yield server, built, api
        finally:
            await built.aclose()


async def outcomes(api: BatchApi, job_id: str, requests: list[BatchRequest]) -> dict[str, Outcome]:
    by_id = {r.custom_id: r.request for r in requests}
    found: dict[str, Outcome] = {}
    async for custom_id, outcome in api.results(job_id, by_id.get):
        assert custom_id not in found
        found[custom_id] = outcome
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_job_runs_through_its_states_and_its_results_are_the_online_answers(
    provider: str,
) -> None:
    requests = batch(provider, 40)
    async with batch_api(provider) as (server, built, api):
        job = await api.submit(requests, token="tok-run-1")
        assert job.state in ("submitted", "running")  # Anthropic has no queued state
        assert job.token in ("tok-run-1", None)

        server.advance_batch_clock(QUEUE_S + RUN_S / 4)
        running = await api.status(job.job_id)
        assert running.state == "running"
        assert (running.requests, running.succeeded, running.processing) == (40, 10, 30)

        server.advance_batch_clock(RUN_S)
        ended = await api.status(job.job_id)
        assert (ended.state, ended.succeeded, ended.errored, ended.processing) == (
            "ended",
            40,
            0,
            0,
        )

        results = await outcomes(api, job.job_id, requests)
        online = {r.custom_id: await built.call(r.request) for r in requests[:4]}
    assert sorted(results) == sorted(r.custom_id for r in requests)
    for custom_id, answer in online.items():
        got = results[custom_id]
        assert isinstance(got, CallResult)
        assert (got.text, got.usage, got.finish_reason) == (
            answer.text,
            answer.usage,
            answer.finish_reason,
        )
    assert server.batch_accepted() == {"requests": 40, "distinct": 40, "repeated": {}, "jobs": 1}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_failed_requests_come_back_as_provider_errors_with_their_kind(provider: str) -> None:
    requests = batch(provider, 60)
    async with batch_api(provider, batch_failure_rate=0.3, seed=7) as (server, _, api):
        job = await api.submit(requests, token="tok-fail")
        server.advance_batch_clock(QUEUE_S + RUN_S)
        ended = await api.status(job.job_id)
        results = await outcomes(api, job.job_id, requests)
    errors = [r for r in results.values() if isinstance(r, ProviderError)]
    assert 0 < len(errors) < 60
    assert {e.kind for e in errors} == {"server_error"}
    assert all(e.usage is None for e in errors)
    assert (ended.succeeded, ended.errored) == (60 - len(errors), len(errors))
    assert all(
        isinstance(r, CallResult) for r in results.values() if not isinstance(r, ProviderError)
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_job_that_expires_half_done_leaves_the_rest_pending(provider: str) -> None:
    requests = batch(provider, 30)
    async with batch_api(provider, batch_expire_fraction=0.5) as (server, _, api):
        job = await api.submit(requests, token="tok-expire")
        server.advance_batch_clock(QUEUE_S + RUN_S)
        expired = await api.status(job.job_id)
        results = await outcomes(api, job.job_id, requests)
    assert expired.state in ("expired", "ended")  # Anthropic ends a batch whose requests expired
    assert expired.done and expired.succeeded == 15
    answered = [cid for cid, r in results.items() if isinstance(r, CallResult)]
    assert answered == [f"item-{i}" for i in range(15)]
    assert all(results.get(f"item-{i}") is None for i in range(15, 30))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_cancelled_job_keeps_what_ran_and_leaves_the_rest_pending(provider: str) -> None:
    requests = batch(provider, 20)
    async with batch_api(provider) as (server, _, api):
        job = await api.submit(requests, token="tok-cancel")
        server.advance_batch_clock(QUEUE_S + RUN_S * 0.3)
        cancelling = await api.cancel(job.job_id)
        assert cancelling.state in ("cancelling", "cancelled")
        server.advance_batch_clock(5)
        cancelled = await api.status(job.job_id)
        results = await outcomes(api, job.job_id, requests)
        server.advance_batch_clock(RUN_S)
        assert (await api.status(job.job_id)).succeeded == 6  # nothing runs after a cancel
    assert cancelled.state == "cancelled" and cancelled.succeeded == 6
    assert sum(isinstance(r, CallResult) for r in results.values()) == 6
    assert all(results.get(f"item-{i}") is None for i in range(6, 20))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_find_gives_back_the_job_a_token_made(provider: str) -> None:
    async with batch_api(provider) as (server, _, api):
        mine = await api.submit(batch(provider, 5, "mine"), token="tok-mine")
        other = await api.submit(batch(provider, 7, "other"), token="tok-other")
        found = await api.find("tok-mine", since=mine.created_at, count=5)
        none = await api.find("tok-never", since=mine.created_at, count=9)
    assert [job.job_id for job in found] == [mine.job_id]
    assert other.job_id != mine.job_id
    assert none == []


async def test_gemini_uploads_a_file_when_the_requests_pass_the_inline_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.providers import _gemini_batch

    monkeypatch.setattr(_gemini_batch, "INLINE_BYTES", 0)
    requests = batch("gemini", 12)
    async with batch_api("gemini", batch_failure_rate=0.25, seed=3) as (server, built, api):
        job = await api.submit(requests, token="tok-file")
        server.advance_batch_clock(QUEUE_S + RUN_S)
        ended = await api.status(job.job_id)
        results = await outcomes(api, job.job_id, requests)
        online = await built.call(requests[0].request)
    assert server.batch_accepted()["distinct"] == 12
    assert sorted(results) == sorted(r.custom_id for r in requests)
    errors = sum(isinstance(r, ProviderError) for r in results.values())
    assert (ended.state, ended.succeeded, ended.errored) == ("ended", 12 - errors, errors)
    first = results["item-0"]
    assert isinstance(first, CallResult) and first.text == online.text


async def test_an_openai_job_whose_input_fails_validation_is_failed_with_its_reason() -> None:
    twice = batch("openai", 3) + batch("openai", 1)
    async with batch_api("openai") as (server, _, api):
        job = await api.submit(twice, token="tok-twice")
        results = await outcomes(api, job.job_id, twice)
    assert (job.state, job.requests) == ("failed", 0)
    assert job.error is not None and "custom_id" in job.error
    assert results == {}
    assert server.batch_accepted()["requests"] == 0
