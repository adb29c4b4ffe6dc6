"""OpenAI's Batch API on the wire: files, batches, and their output and error files.

Shapes follow the official OpenAPI spec (``OpenAIFile``, ``Batch``,
``ListBatchesResponse``) and the batch guide: an input file is JSONL of
``{custom_id, method, url, body}``, validated when the batch is created (a bad
line or a repeated custom id fails the whole batch, with ``errors.data``
naming the line); the output file holds ``{id, custom_id, response:
{status_code, request_id, body}, error: null}`` per answered request, the
error file the failed ones and those that never ran (``error.code``
``batch_expired`` or ``batch_cancelled``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from tests.fakeserver._batchroutes import guarded, job_of, json_object, ok, stream_lines
from tests.fakeserver._dialect import BadRequest
from tests.fakeserver._jobs import Job, Request, answer
from tests.fakeserver._openai import OpenAIDialect
from tests.fakeserver._state import ServerState

ENDPOINT = "/v1/chat/completions"
_DIALECT = OpenAIDialect()
_STATUS = {
    "queued": "validating",
    "running": "in_progress",
    "ended": "completed",
    "expired": "expired",
    "cancelling": "cancelling",
    "cancelled": "cancelled",
}
_NOT_RUN = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}
_DAY_S = 24 * 3600


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/files", guarded(_DIALECT, _upload))
    app.router.add_get("/v1/files/{file_id}/content", guarded(_DIALECT, _content))
    app.router.add_post("/v1/batches", guarded(_DIALECT, _create))
    app.router.add_get("/v1/batches", guarded(_DIALECT, _list))
    app.router.add_get("/v1/batches/{batch_id}", guarded(_DIALECT, _get))
    app.router.add_post("/v1/batches/{batch_id}/cancel", guarded(_DIALECT, _cancel))


async def _upload(request: web.Request, state: ServerState) -> web.StreamResponse:
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("the file must be sent as multipart/form-data")
    fields: dict[str, bytes] = {}
    filename = "upload.jsonl"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name in ("purpose", "file"):
            fields[part.name] = bytes(await part.read())
            filename = part.filename or filename if part.name == "file" else filename
    if fields.get("purpose") != b"batch":
        raise BadRequest("'purpose' must be 'batch' for a batch input file", param="purpose")
    if "file" not in fields:
        raise BadRequest("Missing required parameter: 'file'.", param="file")
    book = state.batches
    file_id = book.new_id("file-")
    book.files[file_id] = fields["file"]
    return ok(
        {
            "id": file_id,
            "object": "file",
            "bytes": len(fields["file"]),
            "created_at": int(state.batches.now()),
            "expires_at": None,
            "filename": filename,
            "purpose": "batch",
            "status": "processed",
            "status_details": None,
        }
    )


async def _create(request: web.Request, state: ServerState) -> web.StreamResponse:
    body = await json_object(request)
    for name, wanted in (("endpoint", ENDPOINT), ("completion_window", "24h")):
        if body.get(name) != wanted:
            raise BadRequest(f"'{name}' must be {wanted!r}", param=name)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str) and len(v) <= 512 for v in metadata.values()
    ):
        raise BadRequest("metadata values must be strings of at most 512 characters")
    file_id = body.get("input_file_id")
    content = state.batches.files.get(file_id) if isinstance(file_id, str) else None
    if content is None:
        return ok(_error(f"No such File object: {file_id}", "invalid_request_error"), 404)
    requests, errors = _read_input(content)
    book = state.batches
    extra = {"metadata": metadata, "input_file_id": file_id, "errors": errors}
    job = book.add([] if errors else requests, state.config, prefix="batch_", **extra)
    return ok(_batch(job, state.batches.now()))


def _read_input(content: bytes) -> tuple[list[Request], list[dict[str, Any]]]:
    requests: list[Request] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            custom_id = record.get("custom_id")
            if not isinstance(custom_id, str) or custom_id in seen:
                raise BadRequest("custom_id must be a string unique within the file")
            if record.get("method") != "POST" or record.get("url") != ENDPOINT:
                raise BadRequest(f"each line must be a POST to {ENDPOINT}")
            body = record.get("body")
            if not isinstance(body, dict):
                raise BadRequest("body must be an object")
            requests.append(Request(custom_id, _DIALECT.parse({}, body, None)))
            seen.add(custom_id)
        except (orjson.JSONDecodeError, AttributeError, BadRequest) as exc:
            errors.append(
                {"code": "invalid_request", "message": str(exc), "param": None, "line": number}
            )
    if not requests and not errors:
        errors.append(
            {
                "code": "empty_file",
                "message": "The input file is empty.",
                "param": None,
                "line": None,
            }
        )
    return requests, errors


async def _get(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, "batch_")
    return ok(_batch(job, state.batches.now())) if job else _missing(request)


async def _cancel(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, "batch_")
    if job is None:
        return _missing(request)
    now = state.batches.now()
    job.cancel(now)
    return ok(_batch(job, now))


async def _list(request: web.Request, state: ServerState) -> web.StreamResponse:
    limit = int(request.query.get("limit", "20"))
    jobs = sorted(state.batches.jobs.values(), key=lambda j: j.created, reverse=True)
    jobs = [j for j in jobs if j.id.startswith("batch_")]
    after = request.query.get("after")
    if after is not None:
        ids = [j.id for j in jobs]
        jobs = jobs[ids.index(after) + 1 :] if after in ids else []
    now = state.batches.now()
    page = [_batch(j, now) for j in jobs[:limit]]
    return ok(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(jobs) > limit,
        }
    )


async def _content(request: web.Request, state: ServerState) -> web.StreamResponse:
    file_id = request.match_info["file_id"]
    book = state.batches
    if file_id in book.files:
        return web.Response(body=book.files[file_id], content_type="application/octet-stream")
    kind, _, job_id = file_id.partition("-")[2].partition("-")
    job = book.jobs.get(job_id)
    if job is None or kind not in ("out", "err"):
        return ok(_error(f"No such File object: {file_id}", "invalid_request_error"), 404)
    return await stream_lines(request, _file_lines(job, state, errors=kind == "err"))


def _file_lines(job: Job, state: ServerState, *, errors: bool) -> Iterator[bytes]:
    for request, result in job.results(state.batches.now()):
        line: dict[str, Any] = {
            "id": f"batch_req_{job.id}_{request.custom_id}",
            "custom_id": request.custom_id,
        }
        if result in _NOT_RUN:
            if errors:
                code, message = _NOT_RUN[result]
                yield orjson.dumps(
                    {**line, "response": None, "error": {"code": code, "message": message}}
                )
            continue
        if (result == "errored") != errors:
            continue
        reply = answer(_DIALECT, state, job, request)
        response = {
            "status_code": reply.status,
            "request_id": f"req_{job.id}_{request.custom_id}",
            "body": orjson.Fragment(reply.body),
        }
        yield orjson.dumps({**line, "response": response, "error": None})


def _batch(job: Job, now: float) -> dict[str, Any]:
    errors = job.extra["errors"]
    phase = job.phase(now)
    status = "failed" if errors else _STATUS[phase]
    counts = job.counts(now)
    done = not errors and job.done(now)

    def when(t: float | None, reached: bool) -> int | None:
        return int(t) if t is not None and reached else None

    stopped = job.stopped_at()
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": ENDPOINT,
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": job.extra["input_file_id"],
        "completion_window": "24h",
        "status": status,
        "output_file_id": f"file-out-{job.id}" if done and counts["succeeded"] else None,
        "error_file_id": f"file-err-{job.id}"
        if done and len(job.requests) > counts["succeeded"]
        else None,
        "created_at": int(job.created),
        "in_progress_at": when(job.created + job.config.batch_queue_s, phase != "queued"),
        "expires_at": int(job.created) + _DAY_S,
        "finalizing_at": None,
        "completed_at": when(job.ends_at, phase == "ended"),
        "failed_at": int(job.created) if errors else None,
        "expired_at": when(stopped, phase == "expired"),
        "cancelling_at": when(job.cancelled_at, job.cancelled_at is not None),
        "cancelled_at": when(job.cancelled_at, phase == "cancelled"),
        "request_counts": {
            "total": len(job.requests),
            "completed": counts["succeeded"],
            "failed": counts["errored"],
        },
        "metadata": job.extra["metadata"],
    }


def _missing(request: web.Request) -> web.Response:
    return ok(
        _error(
            f"No batch found with id '{request.match_info['batch_id']}'.", "invalid_request_error"
        ),
        404,
    )


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
