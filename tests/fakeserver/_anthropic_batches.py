"""Anthropic's Message Batches API on the wire.

Shapes follow the official OpenAPI spec (``MessageBatch``, the results JSONL):
a batch is ``in_progress`` (queued or running alike), ``canceling``, or
``ended``, with five ``request_counts``; its ``results_url`` appears once it
has ended, and each results line is ``{custom_id, result}`` with ``result.type``
``succeeded`` (the Message), ``errored`` (the error envelope), ``canceled`` or
``expired``. Custom ids must match ``^[a-zA-Z0-9_-]{1,64}$`` and be unique in
a batch, as the real API checks when the batch is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from tests.fakeserver._anthropic import AnthropicDialect
from tests.fakeserver._batchroutes import guarded, job_of, json_object, ok, rfc3339, stream_lines
from tests.fakeserver._dialect import BadRequest
from tests.fakeserver._jobs import Job, Request, answer
from tests.fakeserver._state import ServerState

BATCHES = "/v1/messages/batches"
_DIALECT = AnthropicDialect()
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_PREFIX = "msgbatch_"
_DAY_S = 24 * 3600


def add_routes(app: web.Application) -> None:
    app.router.add_post(BATCHES, guarded(_DIALECT, _create))
    app.router.add_get(BATCHES, guarded(_DIALECT, _list))
    app.router.add_get(BATCHES + "/{batch_id}", guarded(_DIALECT, _get))
    app.router.add_get(BATCHES + "/{batch_id}/results", guarded(_DIALECT, _results))
    app.router.add_post(BATCHES + "/{batch_id}/cancel", guarded(_DIALECT, _cancel))


async def _create(request: web.Request, state: ServerState) -> web.StreamResponse:
    body = await json_object(request)
    entries = body.get("requests")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("requests: at least one request is required")
    requests: list[Request] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
            raise BadRequest(f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
        if custom_id in seen:
            raise BadRequest(f"requests.{i}.custom_id: duplicate custom_id {custom_id!r}")
        params = entry.get("params")
        if not isinstance(params, dict):
            raise BadRequest(f"requests.{i}.params: Field required")
        requests.append(Request(custom_id, _DIALECT.parse(request.headers, params, None)))
        seen.add(custom_id)
    job = state.batches.add(requests, state.config, prefix=_PREFIX)
    return ok(_batch(request, job, state.batches.now()))


async def _get(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, _PREFIX)
    return ok(_batch(request, job, state.batches.now())) if job else _missing(request)


async def _cancel(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, _PREFIX)
    if job is None:
        return _missing(request)
    now = state.batches.now()
    job.cancel(now)
    return ok(_batch(request, job, now))


async def _list(request: web.Request, state: ServerState) -> web.StreamResponse:
    limit = int(request.query.get("limit", "20"))
    jobs = [j for j in state.batches.jobs.values() if j.id.startswith(_PREFIX)]
    jobs.sort(key=lambda j: j.created, reverse=True)
    after = request.query.get("after_id")
    if after is not None:
        ids = [j.id for j in jobs]
        jobs = jobs[ids.index(after) + 1 :] if after in ids else []
    now = state.batches.now()
    page = [_batch(request, j, now) for j in jobs[:limit]]
    return ok(
        {
            "data": page,
            "has_more": len(jobs) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


async def _results(request: web.Request, state: ServerState) -> web.StreamResponse:
    job = job_of(request, state, _PREFIX)
    if job is None:
        return _missing(request)
    now = state.batches.now()
    if not job.done(now):
        error = {"type": "invalid_request_error", "message": "Batch has not ended yet."}
        return ok({"type": "error", "error": error}, 400)
    return await stream_lines(request, _result_lines(job, state, now))


def _result_lines(job: Job, state: ServerState, now: float) -> Iterator[bytes]:
    for request, result in job.results(now):
        outcome: dict[str, Any]
        if result in ("expired", "cancelled"):
            outcome = {"type": "expired" if result == "expired" else "canceled"}
        else:
            reply = answer(_DIALECT, state, job, request)
            if result == "succeeded":
                outcome = {"type": "succeeded", "message": orjson.Fragment(reply.body)}
            else:
                outcome = {"type": "errored", "error": orjson.Fragment(reply.body)}
        yield orjson.dumps({"custom_id": request.custom_id, "result": outcome})


def _batch(request: web.Request, job: Job, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    counts = job.counts(now)
    ended = job.done(now)
    stopped = job.stopped_at()
    ended_at = job.ends_at if stopped is None else stopped
    if phase == "cancelled":
        ended_at += job.config.batch_cancel_s
    origin = f"{request.scheme}://{request.host}"
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": "ended"
        if ended
        else ("canceling" if phase == "cancelling" else "in_progress"),
        "request_counts": {
            "processing": counts["processing"],
            "succeeded": counts["succeeded"],
            "errored": counts["errored"],
            "canceled": counts["cancelled"],
            "expired": counts["expired"],
        },
        "ended_at": rfc3339(ended_at) if ended else None,
        "created_at": rfc3339(job.created),
        "expires_at": rfc3339(job.created + _DAY_S),
        "archived_at": None,
        "cancel_initiated_at": rfc3339(job.cancelled_at) if job.cancelled_at else None,
        "results_url": f"{origin}{BATCHES}/{job.id}/results" if ended else None,
    }


def _missing(request: web.Request) -> web.Response:
    message = f"No batch found with id '{request.match_info['batch_id']}'"
    return ok({"type": "error", "error": {"type": "not_found_error", "message": message}}, 404)
