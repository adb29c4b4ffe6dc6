"""OpenAI's Batch API adapter against recorded-shape responses (``httpx.MockTransport``)."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import BatchRequest, CallRequest, CallResult, JobState, Provider
from tests._mock_provider import json_response, mock_provider
from tests.providers._batches import Route, api_of, jsonl, online_bodies, routes
from tests.providers._bodies import openai_error
from tests.providers.test_openai import COMPLETION, KEY, completion

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}},
    "required": ["label"],
    "additionalProperties": False,
}
REQUESTS = [
    BatchRequest("plain-0", CallRequest(model="gpt-4o-mini", prompt="Say hello")),
    BatchRequest(
        "full-1",
        CallRequest(
            model="gpt-4o-mini",
            prompt="Label: my parcel never came",
            system="You label tickets.",
            max_tokens=50,
            temperature=0.2,
            stop=("\n\n",),
            schema=SCHEMA,
            params={"top_p": 0.9, "reasoning_effort": "low"},
        ),
    ),
]
CREATED = 1_764_000_000


def batch_object(status: str = "validating", **changes: Any) -> dict[str, Any]:
    return {
        "id": "batch_abc123",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-in1",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": CREATED,
        "in_progress_at": None,
        "expires_at": CREATED + 86400,
        "request_counts": {"total": 2, "completed": 0, "failed": 0},
        "metadata": {"batchdeck_token": "tok-1"},
        **changes,
    }


def uploaded_lines(request: httpx.Request) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """The multipart upload's fields, and its file's JSONL lines."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields: dict[str, bytes] = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = value.removesuffix(b"\r\n")
    return fields, [orjson.loads(line) for line in fields["file"].splitlines()]


async def test_submit_uploads_the_online_bodies_as_jsonl_then_creates_the_job() -> None:
    table: dict[str, Route] = {
        "POST /v1/files": json_response(200, {"id": "file-in1", "object": "file"}),
        "POST /v1/batches": json_response(200, batch_object()),
    }
    async with mock_provider("openai", routes(table)) as mock:
        job = await api_of(mock).submit(iter(REQUESTS), token="tok-1")
    upload, create = mock.requests
    fields, lines = uploaded_lines(upload)
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    assert int(upload.headers["content-length"]) == len(upload.content)
    assert fields["purpose"] == b"batch"
    assert [line["custom_id"] for line in lines] == ["plain-0", "full-1"]
    assert {(line["method"], line["url"]) for line in lines} == {("POST", "/v1/chat/completions")}
    assert [line["body"] for line in lines] == await online_bodies("openai", REQUESTS, COMPLETION)
    assert orjson.loads(create.content) == {
        "input_file_id": "file-in1",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"batchdeck_token": "tok-1"},
    }
    assert (job.job_id, job.state, job.provider_state, job.token) == (
        "batch_abc123",
        "submitted",
        "validating",
        "tok-1",
    )
    assert (job.created_at, job.expires_at) == (CREATED, CREATED + 86400)


async def test_request_bytes_is_the_size_of_the_line_uploaded() -> None:
    table: dict[str, Route] = {
        "POST /v1/files": json_response(200, {"id": "file-in1"}),
        "POST /v1/batches": json_response(200, batch_object()),
    }
    async with mock_provider("openai", routes(table)) as mock:
        api = api_of(mock)
        sizes = [api.request_bytes(r) for r in REQUESTS]
        await api.submit(REQUESTS, token="tok-1")
    file = uploaded_lines(mock.requests[0])[0]["file"]
    assert sum(sizes) == len(file) + 1  # each line and its newline; the last has none


async def test_a_stream_past_the_limits_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.providers import BatchLimits, _openai_batch

    monkeypatch.setattr(_openai_batch, "LIMITS", BatchLimits(max_requests=1, max_bytes=10**6))
    async with mock_provider("openai", json_response(500, {})) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).submit(REQUESTS, token="tok-1")
        bad_id = [BatchRequest("no spaces allowed", REQUESTS[0].request)]
        with pytest.raises(ProviderError) as refused:
            await api_of(mock).submit(bad_id, token="tok-1")
    assert caught.value.kind == refused.value.kind == "bad_request"
    assert "at most 1 requests" in caught.value.message
    assert "custom_id" in refused.value.message
    assert mock.requests == []


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("validating", "submitted"),
        ("in_progress", "running"),
        ("finalizing", "running"),
        ("completed", "ended"),
        ("failed", "failed"),
        ("expired", "expired"),
        ("cancelling", "cancelling"),
        ("cancelled", "cancelled"),
    ],
)
async def test_each_status_maps_to_its_state(status: str, state: JobState) -> None:
    counts = {"total": 10, "completed": 6, "failed": 1}
    body = batch_object(status, request_counts=counts)
    async with mock_provider("openai", json_response(200, body)) as mock:
        job = await api_of(mock).status("batch_abc123")
    assert mock.request.url.path == "/v1/batches/batch_abc123"
    assert (job.state, job.provider_state) == (state, status)
    assert (job.requests, job.succeeded, job.errored) == (10, 6, 1)
    assert job.processing == (0 if job.done else 3)


async def test_a_failed_job_says_why() -> None:
    errors = {"object": "list", "data": [{"code": "invalid_json_line", "message": "Line 3 bad"}]}
    async with mock_provider(
        "openai", json_response(200, batch_object("failed", errors=errors))
    ) as mock:
        job = await api_of(mock).status("batch_abc123")
    assert (job.state, job.error) == ("failed", "Line 3 bad")


async def test_a_429_on_a_poll_is_rate_limited_with_the_servers_wait() -> None:
    body = openai_error("Rate limit reached for batch requests", "requests", "rate_limit_exceeded")
    async with mock_provider("openai", json_response(429, body, {"retry-after": "7"})) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).status("batch_abc123")
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 7.0)


async def test_an_unexpected_job_object_is_a_bad_response() -> None:
    async with mock_provider("openai", json_response(200, {"id": "batch_1"})) as mock:
        with pytest.raises(ProviderError) as caught:
            await api_of(mock).status("batch_1")
    assert caught.value.kind == "bad_response"


async def test_a_job_id_is_one_path_segment() -> None:
    async with mock_provider("openai", json_response(200, batch_object())) as mock:
        await api_of(mock).status("../files/x")
    assert mock.request.url.raw_path == b"/v1/batches/..%2Ffiles%2Fx"


def output_line(custom_id: str, status: int, body: Any) -> dict[str, Any]:
    response = {"status_code": status, "request_id": "req_1", "body": body}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": response,
        "error": None,
    }


def not_run(custom_id: str, code: str) -> dict[str, Any]:
    error = {"code": code, "message": "not executed"}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": None,
        "error": error,
    }


async def results_of(
    output: bytes, errors: bytes, ids: list[str], **headers: str
) -> dict[str, Any]:
    job = batch_object("completed", output_file_id="file-out", error_file_id="file-err")
    table: dict[str, Route] = {
        "GET /v1/batches/batch_abc123": json_response(200, job),
        "GET /v1/files/file-out/content": httpx.Response(200, content=output, headers=headers),
        "GET /v1/files/file-err/content": httpx.Response(200, content=errors),
    }
    requests = {cid: CallRequest(model="gpt-4o-mini", prompt=cid) for cid in ids}
    async with mock_provider("openai", routes(table)) as mock:
        return {cid: o async for cid, o in api_of(mock).results("batch_abc123", requests.get)}


async def test_results_map_every_line_as_the_online_answer_would_be() -> None:
    usage = {**COMPLETION["usage"], "prompt_tokens_details": {"cached_tokens": 4}}
    refusal = completion(
        choice={"message": {"role": "assistant", "content": None, "refusal": "No."}}
    )
    output = (
        jsonl(
            output_line("ok", 200, completion(usage=usage)),
            output_line("refused", 200, refusal),
            output_line(
                "odd-usage", 200, completion(usage={"prompt_tokens": "19", "completion_tokens": 1})
            ),
            output_line("not-ours", 200, COMPLETION),
        )
        + b"this line is not JSON\n"
    )
    context = openai_error(
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        "context_length_exceeded",
    )
    errors = jsonl(
        output_line("too-long", 400, context),
        output_line("broken", 500, openai_error("The server had an error", "server_error", None)),
        not_run("late", "batch_expired"),
        not_run("stopped", "batch_cancelled"),
        {"custom_id": "lost", "response": None, "error": {"code": "x", "message": "lost it"}},
    )
    ids = ["ok", "refused", "odd-usage", "too-long", "broken", "late", "stopped", "lost"]
    results = await results_of(output, errors, ids)
    assert sorted(results) == sorted(ids)
    assert isinstance(results["ok"], CallResult)
    assert results["ok"].usage == Usage(19, 10, 4)
    assert results["ok"].text == "Hello! How can I assist you today?"
    kinds = {cid: r.kind for cid, r in results.items() if isinstance(r, ProviderError)}
    assert kinds == {
        "refused": "content_filter",
        "too-long": "context_length",
        "broken": "server_error",
        "lost": "server_error",
    }
    assert results["refused"].usage == Usage(19, 10, 0)  # a refusal is billed, as online
    assert results["odd-usage"].usage.unknown
    assert results["late"] is None and results["stopped"] is None
    assert "lost it" in results["lost"].message


async def test_a_compressed_results_file_is_read_and_a_key_it_echoes_is_redacted() -> None:
    echoed = openai_error(f"Incorrect API key provided: {KEY}", "invalid_request_error", None)
    output = gzip.compress(
        jsonl(output_line("ok", 200, COMPLETION), output_line("key", 401, echoed))
    )
    results = await results_of(output, b"", ["ok", "key"], **{"content-encoding": "gzip"})
    assert isinstance(results["ok"], CallResult)
    assert results["key"].kind == "auth"
    assert KEY not in results["key"].message


async def test_a_results_line_past_the_bound_is_a_bad_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.providers import _batchhttp

    monkeypatch.setattr(_batchhttp, "MAX_BODY_BYTES", 1000)
    huge = output_line(
        "ok", 200, completion(choice={"message": {"role": "assistant", "content": "x" * 5000}})
    )
    with pytest.raises(ProviderError) as caught:
        await results_of(jsonl(huge), b"", ["ok"])
    assert caught.value.kind == "bad_response"


async def test_find_reads_newest_first_until_jobs_older_than_since() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        if "after" not in request.url.params:
            jobs = [
                batch_object(
                    id="batch_new", created_at=CREATED + 50, metadata={"batchdeck_token": "other"}
                ),
                batch_object(id="batch_mine", created_at=CREATED + 40),
            ]
            return json_response(200, {"object": "list", "data": jobs, "has_more": True})
        assert request.url.params["after"] == "batch_mine"
        jobs = [
            batch_object(id="batch_twin", created_at=CREATED + 30),
            batch_object(id="batch_old", created_at=CREATED - 3600),
            batch_object(id="batch_older", created_at=CREATED - 7200),
        ]
        return json_response(200, {"object": "list", "data": jobs, "has_more": True})

    async with mock_provider("openai", routes({"GET /v1/batches": page})) as mock:
        found = await api_of(mock).find("tok-1", since=CREATED, count=2)
    assert [job.job_id for job in found] == ["batch_mine", "batch_twin"]
    assert len(mock.requests) == 2


async def test_presets_without_a_batch_api_have_none() -> None:
    provider: Provider
    async with mock_provider("groq", json_response(200, {})) as mock:
        provider = mock.provider
        assert provider.batch_api() is None
    async with mock_provider("openai", json_response(200, {})) as mock:
        assert mock.provider.batch_api() is mock.provider.batch_api()
