"""The pooled aiohttp transport on real sockets: answers, faults, compression, proxies, close."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web

from engine._errors import ProviderError
from engine.providers import CallRequest, make_provider
from engine.providers._http import _env_proxy
from tests.fakeserver.fixtures import FakeServer, serve_in_process

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
