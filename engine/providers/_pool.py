"""The pooled HTTP transport every provider shares for online calls, on aiohttp.

Why aiohttp. httpx 0.28's own connection pool rescans every connection on each
checkout and falls to ~45 req/s at 256 connections (encode/httpx#3215, see
ARCHITECTURE.md, "Rate limits and HTTP"). ``httpx_aiohttp.AiohttpTransport``
keeps httpx's ``Request`` / ``Response`` / transport API and lets an aiohttp
connector hold the connections: one transport per provider per run. The
connector sets no limit of its own: the run's workers are the one owner of how
many calls are in flight (``+``/``-`` change them while the run goes), so a
pool sized from the starting count would cap a raised one, and one connection
per call in flight is what the workers open. Proxies: the environment's
``HTTP(S)_PROXY``/``NO_PROXY`` are read once per transport (aiohttp's
``trust_env`` would read them, and ``~/.netrc`` in a thread, on every request).

Errors. ``httpx_aiohttp`` maps aiohttp's errors onto httpx's, but not
faithfully: a refused connection or a server hang-up arrives as
``httpx.ConnectTimeout`` (a *timeout*), and a garbled status line as a raw
``aiohttp.ClientResponseError``. ``faithful_errors`` judges by the aiohttp error
underneath instead, so nothing past this module knows aiohttp exists.

Only ``engine.providers._http.make_transport`` imports this module, when a run
is about to call a provider: importing aiohttp costs a few hundred milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from engine.providers._http import (
    MAX_BODY_BYTES,
    BadBody,
    decompress,
    read_capped,
    too_large,
)

_ENCODING = (b"content-encoding", b"content-length")
"""Headers that describe the body on the wire, not the decoded one handed on."""


@contextmanager
def faithful_errors() -> Iterator[None]:
    """aiohttp's errors inside the block as the httpx errors they mean: a timeout as
    ``httpx.ReadTimeout``, anything else as ``httpx.NetworkError`` (the connection broke)."""
    try:
        with map_aiohttp_exceptions():
            yield
    except httpx.TransportError as exc:
        if isinstance(exc.__cause__, aiohttp.ClientError):
            raise _meaning(exc.__cause__) from exc.__cause__
        raise
    except aiohttp.ClientError as exc:
        raise _meaning(exc) from exc


def _meaning(error: aiohttp.ClientError) -> httpx.TransportError:
    detail = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(detail)
    return httpx.NetworkError(detail)


class PooledTransport(AiohttpTransport):
    """The aiohttp transport with an unbounded connector: the workers bound concurrency."""

    def __init__(self, *, proxy: httpx.Proxy | None) -> None:
        super().__init__(limits=httpx.Limits(max_connections=None), proxy=proxy)

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The parent's request, with the body read whole (and decompressed) inside aiohttp.

        A provider never streams, and feeding the body through httpx's stream
        iterators (a context manager and three generators per chunk) cost more
        CPU than reading it; the returned ``Response`` is already read, and
        decoded, so it no longer names an encoding. ``BadBody`` for a body
        over the bound, or one that does not decompress.
        """
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        proxy = self.proxy
        with faithful_errors():
            async with self.client.request(
                request.method,
                str(request.url),
                headers=request.headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
                proxy=str(proxy.url) if proxy else None,
                proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                proxy_headers=proxy.headers if proxy else None,
            ) as response:
                if (response.content_length or 0) > MAX_BODY_BYTES:
                    raise BadBody(too_large(MAX_BODY_BYTES))
                wire = await read_capped(response.content.iter_any())
        content = decompress(wire, response.headers.get("content-encoding", ""))
        return httpx.Response(
            response.status,
            headers=[(k, v) for k, v in response.raw_headers if k.lower() not in _ENCODING],
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )
