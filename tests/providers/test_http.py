"""The HTTP layer every provider shares (engine/providers/_http.py, _pool.py).

First the pooled aiohttp transport on real sockets: answers, faults,
compression, proxies. Then the call flow around one request, over
``httpx.MockTransport``: what becomes of a reply that is not JSON or not the
expected shape, of a transport fault, of a server that never finishes, of a
cancelled call, and of a key the server echoes back.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator

import aiohttp
import anyio
import httpx
import orjson
import pytest
from aiohttp import web

from engine._errors import ProviderError
from engine.providers import CallRequest, make_provider
from engine.providers._http import _env_proxy, transport_error
from engine.providers._pool import faithful_errors
from tests._mock_provider import json_response, mock_provider
from tests.fakeserver.fixtures import FakeServer, serve_in_process
from tests.providers._bodies import openai_error

KEY = "test-key-0123456789abcdef"


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with serve_in_process(
        api_key=KEY, slow_body_interval_s=0.2, slow_body_chunks=5, hang_s=5.0
    ) as fake:
        yield fake


def _request(prompt: str = "hello", *, timeout_s: float = 5.0) -> CallRequest:
    return CallRequest(model="gpt-4o-mini", prompt=prompt, timeout_s=timeout_s)


@pytest.mark.anyio
async def test_calls_go_through_the_pool_and_back(server: FakeServer) -> None:
    provider = make_provider("openai", base_url=server.openai_base_url, key=KEY)
    try:
        results = [await provider.call(_request(f"item {n}")) for n in range(3)]
    finally:
        await provider.aclose()
    assert all(r.text and r.usage.output_tokens > 0 for r in results)
    assert server.stats()["requests"] == 3


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("reset", "connection"),
        ("truncated", "connection"),
        ("malformed", "server_error"),
        ("slow_body", "timeout"),
        ("hang", "timeout"),
    ],
)
@pytest.mark.anyio
async def test_faults_on_the_wire_become_the_right_kind(
    server: FakeServer, fault: str, kind: str
) -> None:
    provider = make_provider("anthropic", base_url=server.anthropic_base_url, key=KEY)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.call(_request(f"x [[fault:{fault}]]", timeout_s=0.5))
        assert caught.value.kind == kind
        ok = await provider.call(_request("the pool still works afterwards"))
    finally:
        await provider.aclose()
    assert ok.text


@pytest.mark.anyio
async def test_a_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = make_provider("ollama", base_url=f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.call(_request())
    finally:
        await provider.aclose()
    assert caught.value.kind == "connection"


@pytest.mark.anyio
async def test_gzip_answers_are_decoded_and_headers_reach_the_parser() -> None:
    answer = {
        "choices": [{"message": {"content": "zipped"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    seen: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(request.headers.get("accept-encoding", ""))
        return web.Response(
            body=gzip.compress(orjson.dumps(answer)),
            headers={
                "content-type": "application/json",
                "content-encoding": "gzip",
                "x-ratelimit-remaining-requests": "41",
            },
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    provider = make_provider("vllm", base_url=f"http://127.0.0.1:{port}/v1")
    try:
        result = await provider.call(_request())
    finally:
        await provider.aclose()
        await runner.cleanup()
    assert result.text == "zipped"
    assert result.rate_limits is not None and result.rate_limits.requests_remaining == 41
    assert "gzip" in seen[0]


def test_proxies_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    proxy = _env_proxy(httpx.URL("https://api.openai.com/v1/"))
    assert proxy is not None and proxy.url == httpx.URL("http://proxy.internal:3128")
    assert _env_proxy(httpx.URL("http://127.0.0.1:8000/v1/")) is None


# -- the call flow, over MockTransport ------------------------------------------------

REQUEST = CallRequest(model="gpt-4o-mini", prompt="Say hello")
OPENAI_KEY = "sk-test-0123456789abcdefWXYZ"


@pytest.mark.anyio
async def test_html_error_page_becomes_one_short_line() -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 2000 + "</body>"
    answer = httpx.Response(502, content=page.encode(), headers={"content-type": "text/html"})
    async with mock_provider("openai", answer) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
    assert caught.value.message.startswith("HTTP 502: 502 Bad Gateway")
    assert "<" not in caught.value.message
    assert len(caught.value.message) <= 300


@pytest.mark.parametrize(
    ("provider", "body"),
    [("openai", b'{"id": "chatcmpl-1", "choices": ['), ("anthropic", b"{not json")],
)
@pytest.mark.anyio
async def test_malformed_json_on_200_is_a_server_error(provider: str, body: bytes) -> None:
    model = "gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-latest"
    async with mock_provider(provider, httpx.Response(200, content=body)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(CallRequest(model=model, prompt="Hello"))
    assert caught.value.kind == "server_error"
    assert f"malformed JSON from {provider}" in caught.value.message


@pytest.mark.anyio
async def test_unexpected_shape_on_200_is_a_server_error() -> None:
    async with mock_provider("openai", json_response(200, {"object": "list"})) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.kind == "server_error"
    assert "unexpected response shape from openai" in caught.value.message


def _cause(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


TRANSPORT_CASES = [
    pytest.param(httpx.ReadTimeout("timed out"), "timeout", id="read-timeout"),
    pytest.param(httpx.ConnectTimeout("timed out"), "timeout", id="connect-timeout"),
    pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), "connection", id="refused"),
    pytest.param(httpx.ReadError("[Errno 104] Connection reset by peer"), "connection", id="reset"),
    pytest.param(
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        "connection",
        id="truncated-body",
    ),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), "connection", id="oserror"),
]
"""Faults as they reach the OpenAI provider; the same flow serves every provider, and one
case goes through Gemini to show it."""


@pytest.mark.parametrize(
    ("provider", "model", "exception", "kind"),
    [
        *(pytest.param("openai", "gpt-4o-mini", *c.values, id=c.id) for c in TRANSPORT_CASES),
        pytest.param(
            "gemini",
            "gemini-2.0-flash",
            httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ),
            "connection",
            id="gemini-truncated-body",
        ),
    ],
)
@pytest.mark.anyio
async def test_transport_failures_become_timeout_or_connection(
    provider: str, model: str, exception: BaseException, kind: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    async with mock_provider(provider, fail) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(CallRequest(model=model, prompt="Say hello"))
    assert caught.value.kind == kind
    assert provider in caught.value.message


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        pytest.param(
            _cause(httpx.ConnectTimeout("Server disconnected"), aiohttp.ServerDisconnectedError()),
            "connection",
            id="disconnect-mislabelled-as-timeout",
        ),
        pytest.param(
            _cause(httpx.ReadTimeout("Timeout on reading"), aiohttp.SocketTimeoutError()),
            "timeout",
            id="socket-timeout",
        ),
        pytest.param(
            aiohttp.ClientPayloadError("Response payload is not completed"),
            "connection",
            id="raw-payload-error",
        ),
        pytest.param(httpx.ReadTimeout("timed out"), "timeout", id="httpx-passes-through"),
    ],
)
def test_the_pool_says_what_an_aiohttp_fault_means(exception: Exception, kind: str) -> None:
    """httpx_aiohttp's own mapping calls a hang-up a timeout and lets some aiohttp errors
    through raw; past the pool every fault is the httpx error it means."""
    with pytest.raises(httpx.TransportError) as caught, faithful_errors():
        raise exception
    assert transport_error(caught.value, "openai").kind == kind


@pytest.mark.anyio
async def test_whole_call_deadline_catches_a_server_that_never_finishes() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    request = CallRequest(model="gpt-4o-mini", prompt="x", timeout_s=0.05)
    async with mock_provider("openai", hang) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(request)
    assert caught.value.kind == "timeout"
    assert "0.05 s" in caught.value.message


@pytest.mark.anyio
async def test_cancellation_propagates_and_is_not_an_error() -> None:
    started = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with mock_provider("openai", hang) as mock:
        async with anyio.create_task_group() as group:
            group.start_soon(mock.provider.call, REQUEST)
            await started.wait()
            group.cancel_scope.cancel()
    assert group.cancel_scope.cancel_called


@pytest.mark.anyio
async def test_a_key_echoed_by_the_server_is_redacted_from_the_message() -> None:
    body = openai_error(
        f"Incorrect API key provided: {OPENAI_KEY}.", "invalid_request_error", "invalid_api_key"
    )
    async with mock_provider("openai", json_response(401, body)) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert OPENAI_KEY not in caught.value.message
    assert "[redacted]" in caught.value.message
