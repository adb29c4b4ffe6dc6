"""The HTTP calls of a batch API: JSON calls, a streamed upload and a streamed download.

Why not the online path's transport: the pooled aiohttp transport reads every
body whole under a 32 MiB bound, which suits one answer; a batch moves an input
file of up to a few hundred MB up and a results file of the same order down.
Batch calls are few (an upload, a create, a poll every few seconds, a download),
so httpx's own transport, which streams both ways, costs nothing that matters
here. Everything else is the online provider's (``HttpProvider.batch_endpoint``
and its ``error``/``failure``): base URL and query, headers and key, error kinds
and redaction, so a 429 on a poll is the same ``rate_limited`` error, with the
same wait, as online.

Bounds. A JSON reply is read whole up to ``MAX_JOB_BYTES`` (a Gemini job carries
its inline results). A results file is never held whole: it is read as lines,
each up to ``MAX_BODY_BYTES`` (one answer's bound online), and decompressed with
a bound per step, so a hostile server costs a bounded amount of memory.

URLs a provider hands back (Anthropic's ``results_url``, Gemini's upload URL)
are followed only to the base URL's own scheme, host and port: the key goes
with every call, and must not go anywhere else.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx

from engine._errors import ProviderError
from engine._secrets import redact
from engine.providers._base import CallRequest
from engine.providers._batch import JobStatus, Outcome
from engine.providers._http import (
    MAX_BODY_BYTES,
    SHAPE_ERRORS,
    WBITS,
    BadBody,
    Endpoint,
    HttpProvider,
    Reply,
    decompress,
    json_body,
    one_line,
    read_capped,
    socket_timeouts,
    wire_errors,
)

MAX_JOB_BYTES = 256 << 20
"""The largest JSON reply read whole (a job object, with Gemini's inline results)."""
CALL_DEADLINE_S = 120.0
"""A JSON call's whole deadline: a create may carry up to 256 MB (Anthropic's body)."""
SOCKET_TIMEOUT_S = 60.0
"""Each socket wait of a call; an upload or download has no whole deadline, only these."""
_STEP = 1 << 20
"""Bytes inflated per step of a compressed download."""
CLOCK_SLACK_S = 300.0
"""How far the provider's clock may be behind ours when ``find`` compares its
creation times with the engine's ``since``."""
MAX_PAGES = 100
"""Pages of a job listing ``find`` reads at most."""
PAGE = 100
"""Jobs asked for per page of a listing."""
MAX_COUNT = 10**9
"""More requests than any job holds: a count above it is not believed."""

Query = Mapping[str, str | int]
T = TypeVar("T")


class BatchHttp:
    """One provider's batch calls; every failure leaves as that provider's ``ProviderError``."""

    def __init__(self, provider: HttpProvider) -> None:
        self._endpoint: Endpoint = provider.batch_endpoint()
        self._failure: Callable[[Reply], ProviderError] = provider.failure
        self.name = provider.name

    def read(self, payload: Any, reader: Callable[[Any], T]) -> T:
        """``reader(payload)``; a reply of an unexpected shape is a ``bad_response``."""
        try:
            return reader(payload)
        except SHAPE_ERRORS as exc:
            detail = said(f"{type(exc).__name__}: {exc}")  # it may quote what the server sent
            raise ProviderError(
                "bad_response", f"unexpected batch reply from {self.name} ({detail:.200})"
            ) from None

    def url(self, target: str, query: Query | None = None) -> httpx.URL:
        """``target`` (a path under the base URL, or an absolute URL on its origin) as a URL."""
        base = self._endpoint.base_url
        url = base.join(target)  # a target that names a host (``//host/x`` too) keeps it
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise ProviderError(
                "bad_response",
                f"{self.name} pointed at another host ({url.host:.80}): not followed",
            )
        if "://" not in target and self._endpoint.params:
            url = url.copy_merge_params(self._endpoint.params)
        return url.copy_merge_params(query) if query else url

    async def call(
        self,
        method: str,
        target: str,
        *,
        json: Any = None,
        query: Query | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One JSON call (a body when ``json`` is not None); ``ProviderError`` unless 2xx."""
        content = b"" if json is None else json_body(json)
        return await self.send(
            method, target, content, headers=headers, query=query, deadline_s=CALL_DEADLINE_S
        )

    async def send(
        self,
        method: str,
        target: str,
        content: bytes | AsyncIterable[bytes],
        *,
        size: int | None = None,
        headers: Mapping[str, str] | None = None,
        query: Query | None = None,
        deadline_s: float | None = None,
    ) -> Reply:
        """One call whose body is ``content`` (streamed when it is an iterable of ``size``
        bytes); its reply read whole; ``ProviderError`` unless 2xx."""
        request = self._request(method, target, content, size, headers, query)
        with wire_errors(self.name, deadline_s), anyio.fail_after(deadline_s):
            response = await self._endpoint.transport.handle_async_request(request)
            try:
                chunks, encoding = _wire_body(response)
                raw = await read_capped(chunks, MAX_JOB_BYTES)
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
            body = decompress(raw, encoding, MAX_JOB_BYTES)
        reply = Reply.of(response, body)
        if not 200 <= reply.status < 300:
            raise self._failure(reply)
        return reply

    async def lines(self, target: str, query: Query | None = None) -> AsyncGenerator[bytes, None]:
        """The non-empty lines of the file at ``target``, streamed (never the whole file)."""
        request = self._request("GET", target, b"", None, None, query)
        with wire_errors(self.name):
            response = await self._endpoint.transport.handle_async_request(request)
        try:
            chunks, encoding = _wire_body(response)
            if not 200 <= response.status_code < 300:
                with wire_errors(self.name):
                    raw = decompress(await read_capped(chunks), encoding)
                raise self._failure(Reply.of(response, raw))
            with wire_errors(self.name):
                async for line in _split(_inflate(chunks, encoding)):
                    yield line
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def outcomes(
        self,
        target: str,
        read: Callable[[bytes], tuple[str, Outcome] | None],
        query: Query | None = None,
    ) -> AsyncGenerator[tuple[str, Outcome], None]:
        """``read(line)`` for each line of the results file at ``target``, where not None."""
        async with aclosing(self.lines(target, query)) as lines:
            async for line in lines:
                result = read(line)
                if result is not None:
                    yield result

    def _request(
        self,
        method: str,
        target: str,
        content: bytes | AsyncIterable[bytes],
        size: int | None,
        headers: Mapping[str, str] | None,
        query: Query | None,
    ) -> httpx.Request:
        merged = httpx.Headers(self._endpoint.headers)
        if size is not None:  # a streamed body of known length goes out without chunking
            merged["content-length"] = str(size)
        merged.update(headers or {})
        return httpx.Request(
            method,
            self.url(target, query),
            headers=merged,
            content=content or None,
            extensions=socket_timeouts(SOCKET_TIMEOUT_S),
        )


def name_of(value: Any) -> str:
    """A provider's id or word, which must be a non-empty string (``TypeError`` otherwise)."""
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a non-empty string, got {type(value).__name__}")
    return value


def segment(name: str) -> str:
    """An id as one URL path segment: an id read back from a log never walks up the path."""
    return quote(name, safe="")


def said(text: Any) -> str:
    """What a provider said, as one redacted line for a message."""
    return one_line(redact(str(text)))


def judged(provider: HttpProvider, request: CallRequest, reply: Reply) -> Outcome:
    """What ``reply`` means for ``request``, exactly as online: a result, or its error."""
    try:
        return provider.answer(request, reply)
    except ProviderError as exc:
        return exc


def created(value: Any) -> float:
    """A job's creation time (``ValueError`` when it is not one: a job has one)."""
    when = timestamp(value)
    if when is None:
        raise ValueError(f"created time {value!r} is not a time")
    return when


def count(value: Any) -> int:
    """A request count as a provider wrote it (a number, or Gemini's int64 string); 0 if absurd."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if type(value) is int and 0 <= value <= MAX_COUNT else 0


def timestamp(value: Any) -> float | None:
    """Unix seconds from a number or an RFC 3339 instant; None when absent or unreadable."""
    if type(value) in (int, float):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class JobCollection:
    """A provider's jobs as a REST collection (OpenAI's, Anthropic's): ``GET path/{id}``,
    ``POST path/{id}/cancel``, and ``GET path?limit=`` newest first, paged by a cursor."""

    def __init__(
        self, http: BatchHttp, path: str, *, cursor: str, read: Callable[[Any], JobStatus]
    ) -> None:
        self._http = http
        self._path = path
        self._cursor = cursor
        self._read = read

    async def job(self, job_id: str) -> Any:
        """The job object, as the provider wrote it."""
        return (await self._http.call("GET", f"{self._path}/{segment(job_id)}")).payload

    async def status(self, job_id: str) -> JobStatus:
        return self._http.read(await self.job(job_id), self._read)

    async def cancel(self, job_id: str) -> JobStatus:
        reply = await self._http.call("POST", f"{self._path}/{segment(job_id)}/cancel")
        return self._http.read(reply.payload, self._read)

    async def since(self, since: float) -> list[JobStatus]:
        """The jobs created since ``since`` (less ``CLOCK_SLACK_S``), newest first."""
        found: list[JobStatus] = []
        async with aclosing(self._pages()) as pages:
            async for page in pages:
                for job in page:
                    if job.created_at < since - CLOCK_SLACK_S:
                        return found
                    found.append(job)
        return found

    async def _pages(self) -> AsyncGenerator[list[JobStatus], None]:
        query: dict[str, str | int] = {"limit": PAGE}
        for _ in range(MAX_PAGES):
            reply = await self._http.call("GET", self._path, query=query)
            page = self._http.read(reply.payload, lambda p: [self._read(job) for job in p["data"]])
            yield page
            if not page or reply.payload.get("has_more") is not True:
                return
            query[self._cursor] = page[-1].job_id


def _wire_body(response: httpx.Response) -> tuple[AsyncIterator[bytes], str]:
    """The body's chunks as they come, and the encoding to undo: a transport (a mock)
    may hand the response back already read, and then already decoded."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return response.aiter_raw(), response.headers.get("content-encoding", "")
    return _once(content), ""


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def _inflate(chunks: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """``chunks`` decoded as their content-encoding says, ``_STEP`` bytes at most at a time."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        async for chunk in chunks:
            yield chunk
        return
    wbits = WBITS.get(encoding)
    if wbits is None:
        raise BadBody(f"a file in an encoding batchdeck cannot read ({encoding:.40})")
    inflater = zlib.decompressobj(wbits)
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                yield inflater.decompress(data, _STEP)
                data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise BadBody(f"a compressed file that does not decompress ({exc})") from None


async def _split(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The non-empty lines ``chunks`` make up; ``BadBody`` for a line over ``MAX_BODY_BYTES``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            line, parts, size, start = _line(parts, size + end - start), [], 0, end + 1
            if line.strip():
                yield line
        if start < len(chunk):
            parts.append(chunk[start:])
            size = _checked(size + len(chunk) - start)
    line = _line(parts, size)
    if line.strip():
        yield line


def _line(parts: list[bytes], size: int) -> bytes:
    _checked(size)
    return b"".join(parts)


def _checked(size: int) -> int:
    if size > MAX_BODY_BYTES:
        raise BadBody(f"a result line over {MAX_BODY_BYTES >> 20} MiB: not read")
    return size
