"""The aiohttp application: one request pipeline for every provider, plus control routes.

Every provider request goes through the same steps, in the order real APIs
apply them: key, body, model, rate-limit buckets (a refusal costs nothing and
returns at once, as real 429s do), fault choice, latency, answer. Faults that
break the HTTP exchange itself (reset, truncated, slow body) need the raw
transport, so they live here rather than in the dialects, which only speak
bodies and headers.

The path is kept cheap because the benchmark client shares the machine: one
``orjson`` parse and one dump per request, no logging, no per-request tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from tests.fakeserver import _anthropic_batches, _gemini_batches, _openai_batches
from tests.fakeserver._anthropic import AnthropicDialect
from tests.fakeserver._batchroutes import accepted, advance_clock
from tests.fakeserver._buckets import Denial
from tests.fakeserver._dialect import (
    JSON_HEADERS,
    BadRequest,
    Dialect,
    ErrorKind,
    Reply,
    answer_for,
    json_reply,
)
from tests.fakeserver._faults import find_marker
from tests.fakeserver._gemini import GeminiDialect
from tests.fakeserver._hostile import find_hostile, hostile_reply
from tests.fakeserver._openai import OpenAIDialect
from tests.fakeserver._state import STATE, ServerState
from tests.fakeserver._stats import Stats

_ERROR_FAULTS: dict[str, ErrorKind] = {
    kind: kind for kind in ("500", "503", "529", "context_length", "quota")
}
_LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on with a zero timeout: close() sends RST instead of FIN."""
_MAX_BODY_BYTES = 64 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[STATE] = state
    request_ids = itertools.count(1)
    gemini = _endpoint(GeminiDialect(), request_ids)
    app.router.add_post("/v1/chat/completions", _endpoint(OpenAIDialect(), request_ids))
    app.router.add_post("/v1/messages", _endpoint(AnthropicDialect(), request_ids))
    app.router.add_post("/v1beta/models/{model}:generateContent", gemini)
    app.router.add_post("/v1/models/{model}:generateContent", gemini)
    app.router.add_get("/v1/models", _list_models)
    _openai_batches.add_routes(app)
    _anthropic_batches.add_routes(app)
    _gemini_batches.add_routes(app)
    app.router.add_get("/_batch/accepted", accepted)
    app.router.add_post("/_batch/clock", advance_clock)
    app.router.add_get("/_stats", _stats)
    app.router.add_post("/_reset", _reset)
    app.router.add_get("/_config", _config)
    app.router.add_post("/_config", _configure)
    return app


def _endpoint(dialect: Dialect, request_ids: itertools.count[int]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        stats = state.stats  # the object this request counts in, even across a reset
        stats.begin()
        try:
            return await _serve(request, dialect, state, stats, f"fake{next(request_ids):012d}")
        finally:
            stats.end()

    return handle


async def _serve(
    request: web.Request, dialect: Dialect, state: ServerState, stats: Stats, request_id: str
) -> web.StreamResponse:
    config = state.config
    key = dialect.key(request.headers)
    if config.api_key is not None and key != config.api_key:
        return _send(stats, dialect.error("missing_key" if key is None else "bad_key", key=key))
    try:
        payload = orjson.loads(await request.read())
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be a JSON object")
        call = dialect.parse(request.headers, payload, request.match_info.get("model"))
        marker = find_marker(call.text)
        hostile = find_hostile(call.text)
    except orjson.JSONDecodeError as exc:
        return _send(stats, dialect.error("bad_request", detail=f"invalid JSON body: {exc}"))
    except BadRequest as exc:
        return _send(stats, dialect.error("bad_request", detail=str(exc), param=exc.param))
    if config.ignore_tool_choice and call.tool is not None:
        call = replace(call, tool=None, schema=None, json_mode=False)
    if state.is_missing(call.model):
        return _send(stats, dialect.error("not_found", model=call.model))

    now = time.monotonic()
    tokens = state.tokens(call)
    limiter = state.limiter(dialect, call.model, now)
    denial = limiter.acquire(dialect.charges(call, tokens, config), now)
    headers = dialect.limit_headers(limiter.state(), time.time())
    model_key = f"{dialect.name}:{call.model}"
    if denial is not None:
        stats.rate_limited(model_key)
        return _send(stats, dialect.rate_limited(call.model, denial), headers)
    stats.accepted(
        model_key,
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cached_tokens=tokens.cached,
        cache_write_tokens=tokens.cache_write,
    )
    state.remember(call)
    if hostile is not None:
        stats.status(429 if hostile == "retry_after" else 200)
        return await hostile_reply(
            hostile, request, dialect, call, tokens, key=key, config=config, headers=headers,
            request_id=request_id,
        )  # fmt: skip

    fault = state.faults.pick(marker, (dialect.name, call.model, call.text))
    if fault is not None:
        stats.fault(fault)
    delay = state.latency_s() + (config.hang_s if fault == "hang" else 0.0)
    if delay:
        await asyncio.sleep(delay)
    wait_s = config.fault_retry_after_ms / 1000
    if fault in _ERROR_FAULTS:
        reply = dialect.error(
            _ERROR_FAULTS[fault], model=call.model, input_tokens=tokens.input, wait_s=wait_s
        )
        return _send(stats, reply, headers)
    if fault == "429":
        rpm = config.limits_for(dialect.name, call.model).rpm or 1.0
        denial = Denial("requests", limit=rpm, used=rpm, requested=1, wait_s=wait_s)
        return _send(stats, dialect.rate_limited(call.model, denial), headers)
    if fault == "reset":
        return _reset_connection(request)
    body = dialect.answer(call, answer_for(call, tokens, fault), request_id)
    if fault == "malformed":
        return _send(stats, Reply(200, body[: len(body) // 2], JSON_HEADERS), headers)
    if fault == "truncated":
        stats.status(200)
        return _truncate(request, body, headers)
    if fault == "slow_body":
        stats.status(200)
        return await _trickle(request, body, headers, state)
    return _send(stats, Reply(200, body, JSON_HEADERS), headers)  # none, hang, refusal, bad output


def _send(stats: Stats, reply: Reply, headers: Mapping[str, str] | None = None) -> web.Response:
    stats.status(reply.status)
    return web.Response(
        status=reply.status, body=reply.body, headers={**(headers or {}), **reply.headers}
    )


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST; aiohttp then fails to write the response, silently."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
    return web.Response()


def _truncate(request: web.Request, body: bytes, headers: Mapping[str, str]) -> web.Response:
    """Announce the whole body's length, send half of it, close (written raw: aiohttp won't)."""
    transport = request.transport
    if transport is not None:
        lines = [b"HTTP/1.1 200 OK", b"Content-Type: application/json"]
        lines += [f"{name}: {value}".encode() for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}".encode())
        transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body[: len(body) // 2])
        transport.close()
    return web.Response()


async def _trickle(
    request: web.Request, body: bytes, headers: Mapping[str, str], state: ServerState
) -> web.StreamResponse:
    """Headers at once, then the body in chunks spaced ``slow_body_interval_s`` apart."""
    config = state.config
    response = web.StreamResponse(status=200, headers={**headers, **JSON_HEADERS})
    response.content_length = len(body)
    size = -(-len(body) // config.slow_body_chunks)
    try:
        await response.prepare(request)
        for start in range(0, len(body), size):
            if start:
                await asyncio.sleep(config.slow_body_interval_s)
            await response.write(body[start : start + size])
    except ConnectionError:
        pass  # the client gave up, as it should
    return response


async def _list_models(request: web.Request) -> web.Response:
    """``GET /v1/models`` as OpenAI, the local servers and Anthropic answer it; the key is
    checked as on any route (``Authorization: Bearer`` or ``x-api-key``)."""
    config = request.app[STATE].config
    headers = request.headers
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    key = bearer or headers.get("x-api-key")
    if config.api_key is not None and key != config.api_key:
        reply = json_reply(401, {"error": {"message": "invalid api key", "type": "auth"}})
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
    data = [{"id": model, "object": "model", "owned_by": "fake"} for model in config.listed_models]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), headers=JSON_HEADERS)


async def _stats(request: web.Request) -> web.Response:
    return web.Response(
        body=orjson.dumps(request.app[STATE].stats_snapshot()), headers=JSON_HEADERS
    )


async def _reset(request: web.Request) -> web.Response:
    try:
        options = await _json_object(request)
    except (orjson.JSONDecodeError, TypeError) as exc:
        return _control_error(exc)
    request.app[STATE].reset(config=bool(options.get("config", False)))
    return await _config(request)


async def _config(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[STATE].config.model_dump_json().encode(), headers=JSON_HEADERS
    )


async def _configure(request: web.Request) -> web.Response:
    try:
        request.app[STATE].configure(await _json_object(request))
    except (orjson.JSONDecodeError, TypeError, ValidationError) as exc:
        return _control_error(exc)
    return await _config(request)


async def _json_object(request: web.Request) -> dict[str, Any]:
    """A control route's body: a JSON object, or ``{}`` when empty."""
    body = orjson.loads(await request.read() or b"{}")
    if not isinstance(body, dict):
        raise TypeError(f"{request.path} takes a JSON object")
    return body


def _control_error(exc: Exception) -> web.Response:
    reply = json_reply(400, {"error": str(exc)})
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
