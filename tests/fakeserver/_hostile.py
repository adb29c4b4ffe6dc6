"""A hostile provider's answers, for the attacks batchdeck must survive.

A prompt containing ``[[hostile:NAME]]`` gets, every time it is sent:

- ``echo_key``: a 200 answer whose text quotes the key the request carried.
- ``echo_key_escaped``: a 200 answer whose text is JSON, ``{"note": KEY}`` with every
  character of the key written ``\\uXXXX``: the text never holds the key, what it
  decodes to does.
- ``huge_body``: a 200 whose body is ``hostile_body_bytes`` long, sent in chunks
  with no length announced (a client must stop reading by itself).
- ``huge_body_declared``: the same, with its ``Content-Length`` announced.
- ``gzip_bomb``: a 200 ``Content-Encoding: gzip`` body that inflates to
  ``hostile_body_bytes`` from about a thousandth of that on the wire.
- ``retry_after``: a 429 whose ``Retry-After`` is ``hostile_retry_after`` as
  given (``1000000000``, ``inf``, ``-5``, ``soon``), the wait a client must not
  trust.

Kept apart from ``_faults`` (transport faults every client meets), so each
module stays one concern; ``_app`` asks ``find_hostile`` first.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Mapping

from aiohttp import web

from tests.fakeserver._buckets import Denial
from tests.fakeserver._config import ServerConfig
from tests.fakeserver._dialect import JSON_HEADERS, Answer, BadRequest, Call, Dialect, Tokens

HOSTILE_KINDS = (
    "echo_key",
    "echo_key_escaped",
    "huge_body",
    "huge_body_declared",
    "gzip_bomb",
    "retry_after",
)
_MARKER_PREFIX = "[[hostile:"
_MARKER = re.compile(r"\[\[hostile:([a-z_]+)\]\]")
_CHUNK = b"a" * (1 << 20)


def find_hostile(text: str) -> str | None:
    """The hostile marker's kind in a prompt; ``BadRequest`` for an unknown one."""
    if _MARKER_PREFIX not in text:
        return None
    match = _MARKER.search(text)
    if match is None or match.group(1) not in HOSTILE_KINDS:
        raise BadRequest(f"unknown hostile marker; known: {list(HOSTILE_KINDS)}")
    return match.group(1)


async def hostile_reply(
    kind: str,
    request: web.Request,
    dialect: Dialect,
    call: Call,
    tokens: Tokens,
    *,
    key: str | None,
    config: ServerConfig,
    headers: Mapping[str, str],
    request_id: str,
) -> web.StreamResponse:
    if kind.startswith("echo_key"):
        text = f"Sure. Your key is {key} (again: key={key})."
        if kind == "echo_key_escaped":
            escaped = "".join(f"\\u{ord(c):04x}" for c in key or "")
            text = f'{{"note": "{escaped}"}}'
        body = dialect.answer(call, Answer(text, None, tokens, "stop"), request_id)
        return web.Response(status=200, body=body, headers={**headers, **JSON_HEADERS})
    if kind == "retry_after":
        denial = Denial("requests", limit=1, used=1, requested=1, wait_s=1.0)
        reply = dialect.rate_limited(call.model, denial)
        waits = {"retry-after": config.hostile_retry_after}
        kept = {k: v for k, v in reply.headers.items() if not k.startswith("retry-after")}
        return web.Response(status=429, body=reply.body, headers={**headers, **kept, **waits})
    if kind == "gzip_bomb":
        bomb = _gzipped_zeros(config.hostile_body_bytes)
        response_headers = {**headers, **JSON_HEADERS, "content-encoding": "gzip"}
        return web.Response(status=200, body=bomb, headers=response_headers)
    response = web.StreamResponse(status=200, headers={**headers, **JSON_HEADERS})
    if kind == "huge_body_declared":
        response.content_length = config.hostile_body_bytes
    else:
        response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        left = config.hostile_body_bytes
        while left > 0:
            await response.write(_CHUNK[:left])
            left -= len(_CHUNK)
    except ConnectionError:
        pass  # the client stopped reading, as it should
    return response


@functools.cache
def _gzipped_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [
        packer.compress(zeros[: min(len(zeros), size - done)])
        for done in range(0, size, len(zeros))
    ]
    return b"".join(parts) + packer.flush()
