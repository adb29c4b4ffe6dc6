"""The pooled HTTP transport every provider shares, and the call flow around one request.

Pool. Every provider shares one pooled transport per run, built on aiohttp
(``engine.providers._pool``, which says why), imported only when a call is about
to go out: aiohttp costs a few hundred milliseconds at every start of a command
that never calls a provider (``--help``, ``estimate``, simulate runs).

No ``httpx.AsyncClient`` on the hot path. Measured at 256 calls in flight, the
client's per-request work (merging the base URL, the cookie jar building an
``email.Message`` of every response's headers, the auth and redirect flow)
cost more CPU than the pool itself, so a provider builds its ``httpx.Request``
from a cached URL and fixed headers and hands it to the transport. Tests still
inject ``httpx.MockTransport`` at the same seam.

Errors. Whatever the transport, a fault arrives as an httpx error (the pool
makes aiohttp's faithful) and ``transport_error`` tells a timeout from a broken
connection. A whole-call deadline (``CallRequest.timeout_s``) covers what socket timeouts
cannot: a server that trickles its body one byte at a time.

Bounds. A body is read in chunks and the call fails ``bad_response`` once it
passes ``MAX_BODY_BYTES``, counted both as it arrives and as it is decompressed
(here, with a bound: a gzip bomb is small on the wire, and httpx's own decoder
inflates a chunk whole), so a hostile or broken server costs one item and a
bounded amount of memory, never the run.

Keys in clear. A key (or credentials in the URL) is never sent over plain
``http://`` to a host that is not loopback unless the user allowed it
(``--allow-insecure-http``): a typo'd base URL is refused before any call.

Flow. ``HttpProvider.call`` sends, decodes and hands the reply to the
subclass's ``parse`` or ``failure``; every way a call can go wrong leaves as a
``ProviderError`` with a one-line, redacted message. Cancellation is never caught.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.request
import zlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx
import orjson

from engine._errors import ConfigError, ErrorKind, ProviderError
from engine._results import Usage
from engine._secrets import (
    Secret,
    redact,
    scrub,
    scrub_value,
    strip_url_credentials,
    url_credentials,
)
from engine.providers._base import CallRequest, CallResult, RateLimitInfo
from engine.providers._batch import BatchApi
from engine.providers._headers import retry_after
from engine.providers._presets import ProviderConfig
from engine.providers._usage import UNKNOWN

MAX_BODY_BYTES = 32 << 20
"""The largest response body read: far above any answer's, far below what hurts."""
MESSAGE_LIMIT = 300
"""Characters of a provider's message kept in an error: enough to read, one log line."""

SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_BASE_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "accept-encoding": "gzip, deflate",
    "user-agent": "batchdeck",
}


class BadBody(Exception):
    """A response body that cannot be read: over ``MAX_BODY_BYTES``, or badly compressed."""


WBITS = {"gzip": 47, "x-gzip": 47, "deflate": 47}
"""zlib's window bits per content-encoding: 32 + 15 accepts a gzip or a zlib header."""


def decompress(raw: bytes, encoding: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """``raw`` decoded as its ``content-encoding`` says, never inflated past ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    wbits = WBITS.get(encoding)
    if wbits is None:
        raise BadBody(f"an answer in an encoding batchdeck cannot read ({encoding:.40})")
    try:
        body = zlib.decompressobj(wbits).decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadBody(f"a compressed answer that does not decompress ({exc})") from None
    if len(body) > limit:
        raise BadBody(too_large(limit))
    return body


def too_large(limit: int) -> str:
    """What ``BadBody`` says of a body over ``limit`` bytes."""
    return f"an answer over {limit >> 20} MiB: not read"


async def read_capped(chunks: AsyncIterator[bytes], limit: int = MAX_BODY_BYTES) -> bytes:
    """The body ``chunks`` make up; ``BadBody`` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            parts.clear()  # not kept alive by the traceback while the error travels and retries
            raise BadBody(too_large(limit))
        parts.append(chunk)
    return b"".join(parts)


def check_key_transport(url: httpx.URL, *, has_key: bool, allow_insecure_http: bool) -> None:
    """ConfigError when a key would go over plain http to a host that is not this machine."""
    credentials = has_key or bool(url_credentials(str(url)))
    if url.scheme != "http" or allow_insecure_http or not credentials:
        return
    if is_loopback(url.host):
        return
    raise ConfigError(
        f"refusing to send an API key in clear over http:// to {url.host}: use https://, "
        "or --allow-insecure-http if that network is trusted"
    )


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_transport(*, base_url: httpx.URL) -> httpx.AsyncBaseTransport:
    """The pooled transport for one provider and run, through the environment's proxy if any."""
    from engine.providers._pool import PooledTransport  # aiohttp: only when calls go out

    return PooledTransport(proxy=_env_proxy(base_url))


def _env_proxy(url: httpx.URL) -> httpx.Proxy | None:
    if urllib.request.proxy_bypass(url.host):
        return None
    proxy = urllib.request.getproxies().get(url.scheme)
    return httpx.Proxy(proxy) if proxy else None


def one_line(text: str, *, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, cut at ``limit`` characters with an ellipsis."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def status_kind(status: int) -> ErrorKind:
    """The kind an HTTP status means when the body says nothing more specific."""
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "quota"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status in (503, 529):
        return "overloaded"
    if 400 <= status < 500:
        return "bad_request"
    return "server_error"


def transport_error(exc: BaseException, provider: str) -> ProviderError:
    """``timeout`` or ``connection`` for an exception raised while sending or reading."""
    detail = one_line(redact(str(exc) or type(exc).__name__))
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderError("timeout", f"timed out talking to {provider}: {detail}")
    return ProviderError("connection", f"connection to {provider} failed: {detail}")


def json_body(body: Any) -> bytes:
    """``body`` as JSON bytes; ``bad_request`` when it is not JSON (a --param's value)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise ProviderError("bad_request", f"the request is not JSON: {exc}") from None


def socket_timeouts(seconds: float) -> dict[str, Any]:
    """The request extension giving every socket wait of one exchange ``seconds``."""
    return {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), seconds)}


@contextmanager
def wire_errors(provider: str, deadline_s: float | None = None) -> Iterator[None]:
    """Every way an exchange with ``provider`` can break, raised as the ProviderError it means.

    ``deadline_s`` is the whole exchange's deadline (``anyio.fail_after`` inside the block).
    """
    try:
        yield
    except BadBody as exc:
        raise ProviderError("bad_response", f"{provider} sent {exc}") from None
    except TimeoutError as exc:
        if deadline_s is None:
            raise transport_error(exc, provider) from exc
        raise ProviderError(
            "timeout", f"no complete answer from {provider} within {deadline_s:g} s"
        ) from None
    except (httpx.HTTPError, OSError) as exc:
        raise transport_error(exc, provider) from exc


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: the status, headers and the body decoded as JSON when it is JSON."""

    status: int
    headers: Mapping[str, str]
    """Lower-cased names; repeated headers joined with ``", "``."""
    payload: Any
    """The decoded JSON body, or None when the body is not JSON."""
    content: bytes

    @classmethod
    def of(cls, response: httpx.Response, raw: bytes) -> Reply:
        """The reply ``response`` with body ``raw`` makes (payload None when it is not JSON)."""
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        return cls(response.status_code, dict(response.headers.items()), payload, raw)

    def body_text(self) -> str:
        """The body as one readable line (HTML tags dropped), for error messages."""
        return one_line(_TAGS.sub(" ", self.content.decode("utf-8", "replace")))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a provider's calls go and what every one of them carries."""

    name: str
    base_url: httpx.URL
    """Ends in ``/``; paths are joined to it."""
    params: httpx.QueryParams
    """The base URL's own query (``?api-version=...``), sent with every call."""
    headers: httpx.Headers
    """Content type, user agent and the key."""
    transport: httpx.AsyncBaseTransport


class HttpProvider(ABC):
    """A provider that is one JSON POST per call; subclasses translate one wire format."""

    def __init__(self, config: ProviderConfig, *, headers: Mapping[str, str]) -> None:
        if config.base_url is None:
            raise ValueError(f"{config.name}: a base URL is required")
        self.name = config.name
        self._key = config.key
        given = httpx.URL(config.base_url)
        base = given.copy_with(path=given.path.rstrip("/") + "/", query=None)
        self._params = given.params  # the base URL's query (?api-version=...): sent every time
        for credential in url_credentials(config.base_url):
            Secret(credential)  # registered: redacted wherever the URL or an echo shows it
        check_key_transport(
            base, has_key=config.key is not None, allow_insecure_http=config.allow_insecure_http
        )
        self._base_url = base
        self._headers = httpx.Headers({**_BASE_HEADERS, **headers})
        self._transport = config.transport or make_transport(base_url=base)
        self._urls: dict[str, httpx.URL] = {}
        self._given_transport = config.transport
        self._batch_enabled = config.preset is not None and config.preset.batch
        self._batch: BatchApi | None = None
        self._batch_transport: httpx.AsyncBaseTransport | None = None
        self._shown: dict[str, str] = {}

    @abstractmethod
    def build(self, request: CallRequest) -> tuple[str, dict[str, Any]]:
        """The path (relative to the base URL) and JSON body for ``request``."""

    @abstractmethod
    def parse(self, request: CallRequest, reply: Reply) -> CallResult:
        """A 2xx reply as a result; raises ``ProviderError`` for a refusal or a block."""

    @abstractmethod
    def failure(self, reply: Reply) -> ProviderError:
        """The error a non-2xx reply means."""

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """What the headers say about the caller's limits (None: this provider says nothing)."""
        return None

    models_path: str | None = None
    """Where the server lists its models (``GET``, relative to the base URL); None: nowhere."""

    async def list_models(self, *, timeout_s: float = 10.0) -> list[str]:
        """The model ids the server lists (``GET /v1/models``: OpenAI, the compatible
        servers and Anthropic answer ``{"data": [{"id": ...}, ...]}``), sorted."""
        if self.models_path is None:
            raise ProviderError("bad_request", f"{self.name} does not list its models")
        reply = await self._send(self.models_path, None, timeout_s=timeout_s)
        if not 200 <= reply.status < 300:
            raise self.failure(reply)
        data = reply.payload.get("data") if isinstance(reply.payload, Mapping) else None
        if not isinstance(data, list):
            raise ProviderError("bad_response", f"{self.name} sent no model list (no data array)")
        return sorted({str(m["id"]) for m in data if isinstance(m, Mapping) and m.get("id")})

    async def call(self, request: CallRequest) -> CallResult:
        path, body = self.build(request)
        return self.answer(request, await self._send(path, body, timeout_s=request.timeout_s))

    def answer(self, request: CallRequest, reply: Reply) -> CallResult:
        """The result ``reply`` carries for ``request``; ``ProviderError`` if it is a failure.

        Online answers and each request's answer read back from a batch job go
        through here, so both are judged, charged and scrubbed alike.
        """
        if not 200 <= reply.status < 300:
            raise self.failure(reply)
        # A 2xx answer was (most likely) billed even when it cannot be read: charged as unknown.
        if not isinstance(reply.payload, Mapping):
            message = f"malformed JSON from {self.name}"
            raise self.error("server_error", message, reply, usage=UNKNOWN)
        try:
            result = self.parse(request, reply)
        except SHAPE_ERRORS as exc:
            detail = f"{type(exc).__name__}: {exc}"
            message = f"unexpected response shape from {self.name} ({detail})"
            raise self.error("server_error", message, reply, usage=UNKNOWN) from exc
        # A key the server echoed never reaches the log or outputs, nor one its JSON spells
        # with escapes (``\u0073k-...``), which only the parsed value shows.
        text = scrub(result.text)
        if text is not result.text or result.parsed is not None:
            result = replace(result, text=text, parsed=scrub_value(result.parsed))
        return result

    def batch_api(self) -> BatchApi | None:
        if self._batch is None and self._batch_enabled:
            self._batch = self.make_batch_api()
        return self._batch

    def make_batch_api(self) -> BatchApi | None:
        """This wire's batch adapter, built once by ``batch_api`` (None: the wire has none)."""
        return None

    def batch_endpoint(self) -> Endpoint:
        """What this provider's batch calls share with its online ones, with a transport
        that streams: httpx's own (the pooled one reads every body whole), made once."""
        if self._batch_transport is None:
            self._batch_transport = self._given_transport or httpx.AsyncHTTPTransport(
                proxy=_env_proxy(self._base_url)
            )
        return Endpoint(
            self.name, self._base_url, self._params, self._headers, self._batch_transport
        )

    def request_identity(self, request: CallRequest) -> bytes:
        """The provider's name, the URL without credentials and the body, as canonical JSON
        (keys sorted): what the request sends, headers (and so the key) aside."""
        path, body = self.build(request)
        return orjson.dumps([self.name, self._shown_url(path), body], option=orjson.OPT_SORT_KEYS)

    def _shown_url(self, path: str) -> str:
        shown = self._shown.get(path)
        if shown is None:
            shown = self._shown[path] = strip_url_credentials(str(self._url(path)))
        return shown

    async def aclose(self) -> None:
        await self._transport.aclose()
        batch = self._batch_transport
        if batch is not None and batch is not self._transport:
            await batch.aclose()

    def error(
        self,
        kind: ErrorKind,
        detail: str,
        reply: Reply,
        *,
        wait_s: float | None = None,
        usage: Usage | None = None,
        output: str | None = None,
        retry: bool | None = None,
    ) -> ProviderError:
        """A ``ProviderError`` for ``reply`` whose message is ``detail``, on one line, redacted.

        ``wait_s`` overrides the ``Retry-After`` headers (Gemini puts its wait in the body);
        ``output`` is what the model said (scrubbed of keys, as any answer is), ``retry``
        overrides whether the kind is worth another attempt.
        """
        secrets: tuple[Secret, ...] = (self._key,) if self._key else ()
        prefix = "" if 200 <= reply.status < 300 else f"HTTP {reply.status}: "
        return ProviderError(
            kind,
            one_line(redact(prefix + detail, secrets=secrets)),
            status=reply.status,
            retry_after=wait_s if wait_s is not None else retry_after(reply.headers),
            rate_limits=self.rate_limits(reply.headers),
            usage=usage,
            output=None if output is None else scrub(output),
            retry=retry,
        )

    async def _send(self, path: str, body: dict[str, Any] | None, *, timeout_s: float) -> Reply:
        """POST ``body`` to ``path`` (GET when there is no body) and read the answer."""
        request = httpx.Request(
            "GET" if body is None else "POST",
            self._url(path),
            headers=self._headers,
            content=b"" if body is None else json_body(body),
            extensions=socket_timeouts(timeout_s),
        )
        with wire_errors(self.name, timeout_s), anyio.fail_after(timeout_s):
            response = await self._transport.handle_async_request(request)
            try:
                raw = await response.aread()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
                raise
        return Reply.of(response, raw)

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._base_url.join(path)
            if self._params:
                url = url.copy_merge_params(self._params)
            self._urls[path] = url
        return url
