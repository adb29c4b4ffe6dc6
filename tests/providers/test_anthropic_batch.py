"""Anthropic's Message Batches adapter against recorded-shape responses."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import BatchRequest, CallRequest, CallResult, JobState
from tests._mock_provider import json_response, mock_provider
from tests.providers._batches import Route, api_of, jsonl, online_bodies, routes
from tests.providers._bodies import anthropic_error
from tests.providers.test_anthropic import KEY, MESSAGE, SCHEMA

pytestmark = pytest.mark.anyio

MODEL = "claude-3-5-haiku-latest"
REQUESTS = [
    BatchRequest("plain-0", CallRequest(model=MODEL, prompt="Hello")),
    BatchRequest(
        "full-1",
        CallRequest(
            model=MODEL,
            prompt="Label: refund please",
            system="You label tickets.",
            max_tokens=50,
            temperature=0.2,
            stop=("###",),
            schema=SCHEMA,
            params={"top_k": 5},
        ),
    ),
    BatchRequest(
        "array-2",
        CallRequest(
            model=MODEL, prompt="Tags", schema={"type": "array", "items": {"type": "string"}}
        ),
    ),
]
BATCH_ID = "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"


def batch_object(status: str = "in_progress", **changes: Any) -> dict[str, Any]:
    counts = {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {
        "id": BATCH_ID,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {**counts, **changes.pop("counts", {})},
        "ended_at": None,
        "created_at": "2026-12-03T13:00:00.500Z",
        "expires_at": "2026-12-04T13:00:00.500Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
        **changes,
    }


CREATED = 1_796_302_800.5


async def test_submit_sends_every_request_as_its_online_params_in_one_body() -> None:
    async with mock_provider("anthropic", json_response(200, batch_object()), key=KEY) as mock:
        job = await api_of(mock).submit(REQUESTS, token="tok-1")
    create = mock.request
    assert (create.method, create.url.path) == ("POST", "/v1/messages/batches")
    assert create.headers["x-api-key"] == KEY
    assert create.headers["anthropic-version"] == "2023-06-01"
    assert int(create.headers["content-length"]) == len(create.content)
    sent = orjson.loads(create.content)["requests"]
    assert [r["custom_id"] for r in sent] == ["plain-0", "full-1", "array-2"]
    assert [r["params"] for r in sent] == await online_bodies("anthropic", REQUESTS, MESSAGE)
    assert (job.job_id, job.state, job.token, job.requests) == (BATCH_ID, "running", None, 3)
    assert (job.created_at, job.expires_at) == (CREATED, CREATED + 86400)


@pytest.mark.parametrize(
    ("status", "changes", "state"),
    [
        ("in_progress", {}, "running"),
        ("canceling", {"cancel_initiated_at": "2026-12-03T13:05:00Z"}, "cancelling"),
        ("ended", {"counts": {"processing": 0, "succeeded": 3}}, "ended"),
        ("ended", {"counts": {"processing": 0, "succeeded": 1, "expired": 2}}, "expired"),
        (
            "ended",
            {
                "counts": {"processing": 0, "canceled": 3},
                "cancel_initiated_at": "2026-12-03T13:05Z",
            },
            "cancelled",
        ),
    ],
)
async def test_each_processing_status_maps_to_its_state(
    status: str, changes: dict[str, Any], state: JobState
) -> None:
    body = batch_object(status, **changes)
    async with mock_provider("anthropic", json_response(200, body), key=KEY) as mock:
        job = await api_of(mock).status(BATCH_ID)
    assert mock.request.url.path == f"/v1/messages/batches/{BATCH_ID}"
    assert (job.state, job.provider_state, job.requests) == (state, status, 3)


async def test_a_job_field_that_echoes_the_key_is_never_quoted_in_the_error() -> None:
    body = batch_object(created_at=KEY)  # unreadable, and what the error would quote
    async with mock_provider("anthropic", json_response(200, body), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).status(BATCH_ID)
    assert caught.value.kind == "bad_response" and "created time" in caught.value.message
    assert KEY not in caught.value.message


def result(custom_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "result": outcome}


def errored(type_: str, message: str) -> dict[str, Any]:
    return {
        "type": "errored",
        "error": {"type": "error", "error": {"type": type_, "message": message}},
    }


async def results_of(
    lines: bytes, results_url: str, requests: list[BatchRequest]
) -> dict[str, Any]:
    job = batch_object("ended", results_url=results_url)
    table: dict[str, Route] = {
        f"GET /v1/messages/batches/{BATCH_ID}": json_response(200, job),
        f"GET /v1/messages/batches/{BATCH_ID}/results": httpx.Response(200, content=lines),
    }
    by_id = {r.custom_id: r.request for r in requests}
    async with mock_provider("anthropic", routes(table), key=KEY) as mock:
        return {cid: o async for cid, o in api_of(mock).results(BATCH_ID, by_id.get)}


RESULTS_URL = f"https://api.anthropic.com/v1/messages/batches/{BATCH_ID}/results"


async def test_results_map_every_type_as_the_online_answer_would_be() -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "result", "input": {"label": "refund"}}
    wrapped = {
        "type": "tool_use",
        "id": "toolu_2",
        "name": "result",
        "input": {"value": ["a", "b"]},
    }
    refused = {**MESSAGE, "stop_reason": "refusal"}
    requests = [
        *REQUESTS,
        *(
            BatchRequest(cid, CallRequest(model=MODEL, prompt=cid))
            for cid in ("bad", "spent", "refused", "late", "gone")
        ),
    ]
    lines = jsonl(
        result("plain-0", {"type": "succeeded", "message": MESSAGE}),
        result("full-1", {"type": "succeeded", "message": {**MESSAGE, "content": [tool]}}),
        result("array-2", {"type": "succeeded", "message": {**MESSAGE, "content": [wrapped]}}),
        result("bad", errored("invalid_request_error", "prompt is too long: 300000 tokens")),
        result("spent", errored("billing_error", "Your credit balance is too low")),
        result("refused", {"type": "succeeded", "message": refused}),
        result("late", {"type": "expired"}),
        result("gone", {"type": "canceled"}),
        result("stranger", {"type": "succeeded", "message": MESSAGE}),
    )
    results = await results_of(lines, RESULTS_URL, requests)
    assert sorted(results) == sorted(r.custom_id for r in requests)
    plain, full, array = results["plain-0"], results["full-1"], results["array-2"]
    assert isinstance(plain, CallResult) and plain.usage == Usage(2095, 503, 0)
    assert isinstance(full, CallResult) and full.parsed == {"label": "refund"}
    assert isinstance(array, CallResult) and array.parsed == ["a", "b"]
    kinds = {cid: r.kind for cid, r in results.items() if isinstance(r, ProviderError)}
    assert kinds == {"bad": "context_length", "spent": "quota", "refused": "content_filter"}
    assert results["refused"].usage == Usage(2095, 503, 0)
    assert results["late"] is None and results["gone"] is None


@pytest.mark.parametrize("origin", ["https:", ""])  # "//host/..." names a host too
async def test_a_results_url_on_another_host_is_not_followed_with_the_key(origin: str) -> None:
    elsewhere = f"{origin}//collector.example.com/v1/messages/batches/{BATCH_ID}/results"
    with pytest.raises(ProviderError) as caught:
        await results_of(b"", elsewhere, REQUESTS)
    assert caught.value.kind == "bad_response"
    assert "collector.example.com" in caught.value.message


async def test_no_results_url_yet_means_no_results() -> None:
    assert await results_of(b"", "", REQUESTS) == {}


async def test_find_matches_jobs_created_since_with_the_same_request_count() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        def job(id_: str, created: str, total: int) -> dict[str, Any]:
            return batch_object(id=id_, created_at=created, counts={"processing": total})

        if "after_id" not in request.url.params:
            jobs = [
                job("msgbatch_new", "2026-12-03T13:10:00Z", 3),
                job("msgbatch_b", "2026-12-03T13:09:00Z", 5),
            ]
            return json_response(200, {"data": jobs, "has_more": True, "last_id": "msgbatch_b"})
        assert request.url.params["after_id"] == "msgbatch_b"
        jobs = [
            job("msgbatch_c", "2026-12-03T13:01:00Z", 3),
            job("msgbatch_old", "2026-12-02T10:00:00Z", 3),
        ]
        return json_response(200, {"data": jobs, "has_more": True, "last_id": "msgbatch_old"})

    async with mock_provider(
        "anthropic", routes({"GET /v1/messages/batches": page}), key=KEY
    ) as mock:
        found = await api_of(mock).find("ignored", since=CREATED, count=3)
    assert [job.job_id for job in found] == ["msgbatch_new", "msgbatch_c"]
    assert len(mock.requests) == 2


async def test_cancel_posts_to_the_batch_and_reads_its_state() -> None:
    body = batch_object("canceling", cancel_initiated_at="2026-12-03T13:05:00Z")
    async with mock_provider("anthropic", json_response(200, body), key=KEY) as mock:
        job = await api_of(mock).cancel(BATCH_ID)
    assert (mock.request.method, mock.request.url.path) == (
        "POST",
        f"/v1/messages/batches/{BATCH_ID}/cancel",
    )
    assert job.state == "cancelling"


async def test_an_overloaded_poll_is_overloaded() -> None:
    body = anthropic_error("overloaded_error", "Overloaded")
    async with mock_provider("anthropic", json_response(529, body), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).status(BATCH_ID)
    assert caught.value.kind == "overloaded"
