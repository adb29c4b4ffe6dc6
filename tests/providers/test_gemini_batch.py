"""Gemini's Batch Mode adapter against recorded-shape responses."""

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
from tests.providers._bodies import google_error
from tests.providers.test_gemini import ANSWER, KEY

pytestmark = pytest.mark.anyio

MODEL = "gemini-2.0-flash"
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
            schema={"type": "object", "properties": {"label": {"type": "string"}}},
            params={"topK": 5, "safetySettings": []},
        ),
    ),
]
CREATE = f"POST /v1beta/models/{MODEL}:batchGenerateContent"


def operation(state: str = "BATCH_STATE_PENDING", **changes: Any) -> dict[str, Any]:
    stats = {
        "requestCount": "2",
        "successfulRequestCount": "0",
        "failedRequestCount": "0",
        "pendingRequestCount": "2",
        **changes.pop("stats", {}),
    }
    metadata = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
        "model": f"models/{MODEL}",
        "name": "batches/abc123",
        "displayName": "tok-1",
        "createTime": "2026-12-03T13:00:00.123456789Z",
        "updateTime": "2026-12-03T13:00:01Z",
        "batchStats": stats,
        "state": state,
    }
    return {"name": "batches/abc123", "metadata": metadata, **changes}


async def test_small_jobs_go_inline_with_each_online_request_and_its_key() -> None:
    async with mock_provider(
        "gemini", routes({CREATE: json_response(200, operation())}), key=KEY
    ) as mock:
        job = await api_of(mock).submit(REQUESTS, token="tok-1")
    create = mock.request
    assert create.headers["x-goog-api-key"] == KEY
    batch = orjson.loads(create.content)["batch"]
    assert (batch["model"], batch["displayName"]) == (f"models/{MODEL}", "tok-1")
    inline = batch["inputConfig"]["requests"]["requests"]
    assert [r["metadata"] for r in inline] == [{"key": "plain-0"}, {"key": "full-1"}]
    assert [r["request"] for r in inline] == await online_bodies("gemini", REQUESTS, ANSWER)
    assert (job.job_id, job.state, job.token, job.requests) == ("abc123", "submitted", "tok-1", 2)


async def test_large_jobs_upload_a_jsonl_file_with_the_resumable_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.providers import _gemini_batch

    monkeypatch.setattr(_gemini_batch, "INLINE_BYTES", 10)
    upload_url = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u1"
    start = httpx.Response(200, json={}, headers={"x-goog-upload-url": upload_url})

    def upload(request: httpx.Request) -> httpx.Response:
        if request.headers["x-goog-upload-command"] == "start":
            return start
        return json_response(200, {"file": {"name": "files/in1"}})

    table: dict[str, Route] = {
        "POST /upload/v1beta/files": upload,
        CREATE: json_response(200, operation()),
    }
    async with mock_provider("gemini", routes(table), key=KEY) as mock:
        await api_of(mock).submit(REQUESTS, token="tok-1")
    begin, send, create = mock.requests
    assert begin.headers["x-goog-upload-protocol"] == "resumable"
    assert int(begin.headers["x-goog-upload-header-content-length"]) == len(send.content)
    assert send.url.params["upload_id"] == "u1"
    assert send.headers["x-goog-upload-command"] == "upload, finalize"
    lines = [orjson.loads(line) for line in send.content.splitlines()]
    assert [line["key"] for line in lines] == ["plain-0", "full-1"]
    assert [line["request"] for line in lines] == await online_bodies("gemini", REQUESTS, ANSWER)
    assert orjson.loads(create.content)["batch"]["inputConfig"] == {"fileName": "files/in1"}


async def test_one_job_is_for_one_model() -> None:
    other = BatchRequest("other-9", CallRequest(model="gemini-2.5-pro", prompt="Hi"))
    async with mock_provider("gemini", json_response(500, {}), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).submit([*REQUESTS, other], token="tok-1")
    assert caught.value.kind == "bad_request"
    assert mock.requests == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("BATCH_STATE_PENDING", "submitted"),
        ("BATCH_STATE_RUNNING", "running"),
        ("BATCH_STATE_SUCCEEDED", "ended"),
        ("BATCH_STATE_FAILED", "failed"),
        ("BATCH_STATE_CANCELLED", "cancelled"),
        ("BATCH_STATE_EXPIRED", "expired"),
        ("JOB_STATE_SUCCEEDED", "ended"),
    ],
)
async def test_each_batch_state_maps_to_its_state(state: str, expected: JobState) -> None:
    body = operation(state, stats={"successfulRequestCount": "1", "pendingRequestCount": "1"})
    async with mock_provider("gemini", json_response(200, body), key=KEY) as mock:
        job = await api_of(mock).status("abc123")
    assert mock.request.url.path == "/v1beta/batches/abc123"
    assert (job.state, job.provider_state, job.succeeded) == (expected, state, 1)
    assert job.processing == (0 if job.done else 1)


def status(code: int, name: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": name}


async def test_inline_responses_map_as_online_answers_and_errors() -> None:
    items = [
        {"response": ANSWER, "metadata": {"key": "plain-0"}},
        {
            "error": status(
                3, "INVALID_ARGUMENT", "The input token count exceeds the maximum number of tokens"
            ),
            "metadata": {"key": "full-1"},
        },
        {"error": status(8, "RESOURCE_EXHAUSTED", "Quota exceeded"), "metadata": {"key": "busy"}},
        {"error": status(1, "CANCELLED", "cancelled"), "metadata": {"key": "gone"}},
        {
            "response": {**ANSWER, "promptFeedback": {"blockReason": "SAFETY"}},
            "metadata": {"key": "blocked"},
        },
        {"response": ANSWER, "metadata": {"key": "stranger"}},
        {"response": ANSWER},
    ]
    response = {"inlinedResponses": {"inlinedResponses": items}}
    body = operation("BATCH_STATE_SUCCEEDED", done=True, response=response)
    requests = {
        cid: CallRequest(model=MODEL, prompt=cid)
        for cid in ("plain-0", "full-1", "busy", "gone", "blocked")
    }
    async with mock_provider("gemini", json_response(200, body), key=KEY) as mock:
        results = {cid: o async for cid, o in api_of(mock).results("abc123", requests.get)}
    assert sorted(results) == sorted(requests)
    assert isinstance(results["plain-0"], CallResult)
    assert results["plain-0"].usage == Usage(8, 9, 0)
    kinds = {cid: r.kind for cid, r in results.items() if isinstance(r, ProviderError)}
    assert kinds == {
        "full-1": "context_length",
        "busy": "rate_limited",
        "blocked": "content_filter",
    }
    assert results["gone"] is None


async def test_a_responses_file_is_downloaded_and_read_line_by_line() -> None:
    body = operation("BATCH_STATE_SUCCEEDED", done=True, response={"responsesFile": "files/out1"})
    lines = jsonl(
        {"key": "plain-0", "response": ANSWER},
        {"key": "full-1", "error": status(13, "INTERNAL", "Internal error")},
    )
    table: dict[str, Route] = {
        "GET /v1beta/batches/abc123": json_response(200, body),
        "GET /download/v1beta/files/out1:download": httpx.Response(200, content=lines),
    }
    requests = {r.custom_id: r.request for r in REQUESTS}
    async with mock_provider("gemini", routes(table), key=KEY) as mock:
        results = {cid: o async for cid, o in api_of(mock).results("batches/abc123", requests.get)}
    assert mock.request.url.params["alt"] == "media"
    assert isinstance(results["plain-0"], CallResult)
    assert isinstance(results["full-1"], ProviderError) and results["full-1"].kind == "server_error"


async def test_find_matches_the_display_name_across_pages() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        if "pageToken" not in request.url.params:
            ops = [
                operation(),
                {
                    **operation(),
                    "name": "batches/other",
                    "metadata": {**operation()["metadata"], "displayName": "tok-2"},
                },
            ]
            return json_response(200, {"operations": ops, "nextPageToken": "p2"})
        old = operation()
        old["metadata"] = {**old["metadata"], "createTime": "2026-11-01T00:00:00Z"}
        return json_response(200, {"operations": [{**old, "name": "batches/old"}]})

    async with mock_provider("gemini", routes({"GET /v1beta/batches": page}), key=KEY) as mock:
        found = await api_of(mock).find("tok-1", since=1_796_302_800.0, count=2)
    assert [job.job_id for job in found] == ["abc123"]
    assert len(mock.requests) == 2


async def test_cancel_says_cancelling_while_gemini_still_says_running() -> None:
    table: dict[str, Route] = {
        "POST /v1beta/batches/abc123:cancel": json_response(200, {}),
        "GET /v1beta/batches/abc123": json_response(200, operation("BATCH_STATE_RUNNING")),
    }
    async with mock_provider("gemini", routes(table), key=KEY) as mock:
        job = await api_of(mock).cancel("abc123")
    assert (job.state, job.provider_state) == ("cancelling", "BATCH_STATE_RUNNING")


async def test_a_429_on_a_poll_waits_what_the_body_says() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
    body = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", retry)
    async with mock_provider("gemini", json_response(429, body), key=KEY) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).status("abc123")
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 12.0)


@pytest.mark.parametrize("room", [0, 1 << 16, 1 << 17, 1 << 20])
async def test_a_job_goes_inline_only_when_its_create_body_fits_the_cap(
    monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    """Inline requests are larger than their file lines (the key moves into ``metadata``):
    6,000 of them outgrow a cap their file lines fit by 64 KiB."""
    from engine.providers import _gemini_batch

    requests = [
        BatchRequest(f"k{i}", CallRequest(model=MODEL, prompt=f"t{i}")) for i in range(6000)
    ]
    upload_url = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=u1"

    def upload(request: httpx.Request) -> httpx.Response:
        if request.headers["x-goog-upload-command"] == "start":
            return httpx.Response(200, json={}, headers={"x-goog-upload-url": upload_url})
        return json_response(200, {"file": {"name": "files/in1"}})

    table: dict[str, Route] = {
        "POST /upload/v1beta/files": upload,
        CREATE: json_response(200, operation()),
    }
    async with mock_provider("gemini", routes(table), key=KEY) as mock:
        api = api_of(mock)
        file_bytes = sum(api.request_bytes(r) for r in requests) - 1
        cap = file_bytes + room
        monkeypatch.setattr(_gemini_batch, "INLINE_BYTES", cap)
        await api.submit(requests, token="tok-1")
    create = mock.requests[-1]
    inline = "requests" in orjson.loads(create.content)["batch"]["inputConfig"]
    assert inline == (len(mock.requests) == 1)
    assert not inline or len(create.content) <= cap
    assert inline == (room >= 1 << 17)


async def test_an_empty_job_or_a_spool_that_cannot_be_written_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    async with mock_provider("gemini", json_response(500, {}), key=KEY) as mock:
        with pytest.raises(ProviderError) as empty:
            await api_of(mock).submit([], token="tok-1")

        def full_disk() -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(tempfile, "TemporaryFile", full_disk)
        with pytest.raises(ProviderError) as full:
            await api_of(mock).submit(REQUESTS, token="tok-1")
    assert (empty.value.kind, full.value.kind) == ("bad_request", "internal")
    assert "No space left" in full.value.message
    assert mock.requests == []
