"""Gemini's Batch Mode on the wire: batch operations, and the resumable Files API they use.

Shapes follow the API reference: ``models/{model}:batchGenerateContent``
takes ``{"batch": {displayName, inputConfig}}`` whose input is inline
(``requests.requests[]`` of ``{request, metadata}``) or a ``fileName`` (JSONL
of ``{key, request}``); it answers with an operation ``batches/{id}`` whose
``metadata`` is the batch (``state`` ``BATCH_STATE_*``, ``batchStats`` counts
as int64 strings) and, once done, whose ``response`` holds
``inlinedResponses`` (``{response | error, metadata}``) or a ``responsesFile``
(``{key, response | error}`` lines, read from ``/download/v1beta/...``).
Uploads follow the resumable protocol: a ``start`` call answered with an
``x-goog-upload-url``, then ``upload, finalize`` with the bytes. Requests that
expired or were cancelled get no response. Gemini has no ``cancelling``: a
cancelled job reads ``RUNNING`` until it is ``CANCELLED``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from tests.fakeserver._batchroutes import guarded, job_of, json_object, ok, rfc3339, stream_lines
from tests.fakeserver._dialect import BadRequest, Call
from tests.fakeserver._gemini import GeminiDialect
from tests.fakeserver._jobs import Job, Request, answer
from tests.fakeserver._state import ServerState

_DIALECT = GeminiDialect()
_PREFIX = "gbatch"
_TYPES = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_STATE = {
    "queued": "BATCH_STATE_PENDING",
    "running": "BATCH_STATE_RUNNING",
    "cancelling": "BATCH_STATE_RUNNING",
    "ended": "BATCH_STATE_SUCCEEDED",
    "expired": "BATCH_STATE_EXPIRED",
    "cancelled": "BATCH_STATE_CANCELLED",
}
_INTERNAL = 13


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1beta/models/{model}:batchGenerateContent", guarded(_DIALECT, _create))
    app.router.add_get("/v1beta/batches", guarded(_DIALECT, _list))
    app.router.add_get("/v1beta/batches/{batch_id}", guarded(_DIALECT, _get))
    app.router.add_post("/v1beta/batches/{batch_id}:cancel", guarded(_DIALECT, _cancel))
    app.router.add_post("/upload/v1beta/files", guarded(_DIALECT, _upload))
    app.router.add_get("/download/v1beta/files/{file_id}:download", guarded(_DIALECT, _download))


async def _upload(request: web.Request, state: ServerState) -> web.StreamResponse:
    command = request.headers.get("x-goog-upload-command", "")
    book = state.batches
    if command == "start":
        await request.read()
        upload_id = book.new_id("upload")
        url = f"{request.scheme}://{request.host}/upload/v1beta/files?upload_id={upload_id}"
        return ok({}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"})
    upload_id = request.query.get("upload_id")
    if not upload_id or "finalize" not in command:
        raise BadRequest("an upload needs a start call, then 'upload, finalize' with its bytes")
    content = await request.read()
    name = f"files/{upload_id}"
    book.files[name] = content
    file = {
        "name": name,
        "mimeType": request.headers.get("content-type", "application/jsonl"),
        "sizeBytes": str(len(content)),
        "state": "ACTIVE",
        "source": "UPLOADED",
    }
    return ok({"file": file})


async def _create(request: web.Request, state: ServerState) -> web.StreamResponse:
    model = request.match_info["model"]
    batch = (await json_object(request)).get("batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("displayName"), str):
        raise BadRequest("* BatchGenerateContentRequest.batch.display_name: required")
    source = batch.get("inputConfig")
    if not isinstance(source, dict):
        raise BadRequest("* BatchGenerateContentRequest.batch.input_config: required")
    if "fileName" in source:
        content = state.batches.files.get(source["fileName"])
        if content is None:
            raise BadRequest(f"File {source['fileName']} not found.")
        lines = [orjson.loads(line) for line in content.splitlines() if line.strip()]
        entries = [(line.get("key"), line.get("request")) for line in lines]
        inline = False
    else:
        wrapped = (source.get("requests") or {}).get("requests")
        if not isinstance(wrapped, list) or not wrapped:
            raise BadRequest("* BatchGenerateContentRequest.batch.input_config: no requests")
        entries = [((r.get("metadata") or {}).get("key"), r.get("request")) for r in wrapped]
        inline = True
    requests = [Request(str(key), _parse(body, model)) for key, body in entries]
    job = state.batches.add(
        requests,
        state.config,
        prefix=_PREFIX,
        display_name=batch["displayName"],
        model=f"models/{model}",
        inline=inline,
    )
    return ok(_operation(job, state, state.batches.now()))


def _parse(body: Any, model: str) -> Call:
    if not isinstance(body, dict):
        raise BadRequest("* each batch request must be a GenerateContentRequest")
    return _DIALECT.parse({}, body, model)


async def _get(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, _PREFIX)
    return ok(_operation(job, state, state.batches.now())) if job else _missing(request)


async def _cancel(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, _PREFIX)
    if job is None:
        return _missing(request)
    now = state.batches.now()
    job.cancel(now)
    return ok({})


async def _list(request: web.Request, state: ServerState) -> web.StreamResponse:
    size = int(request.query.get("pageSize", "20"))
    start = int(request.query.get("pageToken") or 0)
    jobs = [j for j in state.batches.jobs.values() if j.id.startswith(_PREFIX)]
    now = state.batches.now()
    page = [_operation(j, state, now, results=False) for j in jobs[start : start + size]]
    body: dict[str, Any] = {"operations": page}
    if start + size < len(jobs):
        body["nextPageToken"] = str(start + size)
    return ok(body)


async def _download(request: web.Request, state: ServerState) -> web.StreamResponse:
    job_id = request.match_info["file_id"].removesuffix("-responses")
    job = state.batches.jobs.get(job_id)
    if job is None or request.query.get("alt") != "media":
        return _missing(request)
    return await stream_lines(request, _file_lines(job, state))


def _file_lines(job: Job, state: ServerState) -> Iterator[bytes]:
    for key, outcome in _outcomes(job, state, state.batches.now()):
        yield orjson.dumps({"key": key, **outcome})


def _outcomes(job: Job, state: ServerState, now: float) -> Iterator[tuple[str, dict[str, Any]]]:
    for request, result in job.results(now):
        if result == "succeeded":
            reply = answer(_DIALECT, state, job, request)
            yield request.custom_id, {"response": orjson.Fragment(reply.body)}
        elif result == "errored":
            error = orjson.loads(answer(_DIALECT, state, job, request).body)["error"]
            status = {"code": _INTERNAL, "message": error["message"], "status": "INTERNAL"}
            yield request.custom_id, {"error": status}


def _operation(job: Job, state: ServerState, now: float, *, results: bool = True) -> dict[str, Any]:
    phase = job.phase(now)
    counts = job.counts(now)
    name = f"batches/{job.id}"
    metadata = {
        "@type": _TYPES + "GenerateContentBatch",
        "model": job.extra["model"],
        "name": name,
        "displayName": job.extra["display_name"],
        "createTime": rfc3339(job.created),
        "updateTime": rfc3339(now),
        "batchStats": {
            "requestCount": str(len(job.requests)),
            "successfulRequestCount": str(counts["succeeded"]),
            "failedRequestCount": str(counts["errored"]),
            "pendingRequestCount": str(counts["processing"]),
        },
        "state": _STATE[phase],
    }
    operation: dict[str, Any] = {"name": name, "metadata": metadata, "done": job.done(now)}
    if job.done(now) and results:
        response: dict[str, Any] = {"@type": _TYPES + "GenerateContentBatchOutput"}
        if job.extra["inline"]:
            items = [
                {**outcome, "metadata": {"key": key}} for key, outcome in _outcomes(job, state, now)
            ]
            response["inlinedResponses"] = {"inlinedResponses": items}
        else:
            response["responsesFile"] = f"files/{job.id}-responses"
        operation["response"] = response
    return operation


def _missing(request: web.Request) -> web.Response:
    error = {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    return ok({"error": error}, 404)
