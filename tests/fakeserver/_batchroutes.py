"""What the three providers' batch endpoints share.

Every batch route checks the key the way its provider's online endpoint does
(the same dialect answers a wrong one), reads JSON the same way, and streams
results files line by line, so a large job is never one body in memory. The
test-only ``GET /_batch/accepted`` reports every custom id any job accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakeserver._dialect import JSON_HEADERS, BadRequest, Dialect, Reply
from tests.fakeserver._jobs import Job
from tests.fakeserver._state import STATE, ServerState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BatchHandler = Callable[[web.Request, ServerState], Awaitable[web.StreamResponse]]
_LINES_PER_WRITE = 512


def guarded(dialect: Dialect, handler: BatchHandler) -> Handler:
    """``handler`` behind ``dialect``'s key check; a ``BadRequest`` is that provider's 400."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        key = dialect.key(request.headers)
        if key != state.config.api_key:
            return send(dialect.error("missing_key" if key is None else "bad_key", key=key))
        try:
            return await handler(request, state)
        except BadRequest as exc:
            return send(dialect.error("bad_request", detail=str(exc), param=exc.param))

    return handle


def send(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), headers={**JSON_HEADERS, **(headers or {})}
    )


def rfc3339(t: float) -> str:
    """Unix time ``t`` as an RFC 3339 instant in UTC, microseconds kept."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def job_of(request: web.Request, state: ServerState, prefix: str) -> Job | None:
    """The job the path's ``batch_id`` names, if it is one of this provider's."""
    job = state.batches.jobs.get(request.match_info["batch_id"])
    return job if job is not None and job.id.startswith(prefix) else None


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    return payload


async def stream_lines(request: web.Request, lines: Iterable[bytes]) -> web.StreamResponse:
    """``lines`` as a JSONL body, written a few hundred lines at a time."""
    response = web.StreamResponse(headers={"Content-Type": "application/jsonl"})
    await response.prepare(request)
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == _LINES_PER_WRITE:
            await response.write(b"\n".join(chunk) + b"\n")
            chunk.clear()
    if chunk:
        await response.write(b"\n".join(chunk) + b"\n")
    await response.write_eof()
    return response


async def accepted(request: web.Request) -> web.Response:
    """``GET /_batch/accepted``: every custom id any batch job accepted, counted."""
    return ok(request.app[STATE].batches.snapshot())


async def advance_clock(request: web.Request) -> web.Response:
    """``POST /_batch/clock {"advance_s": S}``: move the jobs' clock S seconds forward."""
    try:
        advance = (await json_object(request)).get("advance_s")
    except BadRequest as exc:
        return ok({"error": str(exc)}, 400)
    if type(advance) not in (int, float) or advance < 0:
        return ok({"error": "advance_s must be a number >= 0"}, 400)
    book = request.app[STATE].batches
    book.offset_s += advance
    return ok({"now": book.now()})
