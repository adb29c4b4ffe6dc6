"""A provider wired to ``httpx.MockTransport``: canned responses in, recorded requests out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from engine.providers import Provider, make_provider

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers or {})


@dataclass
class Recorded:
    provider: Provider
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def body(self) -> Any:
        return orjson.loads(self.requests[-1].content)

    @property
    def request(self) -> httpx.Request:
        return self.requests[-1]


@asynccontextmanager
async def mock_provider(
    name: str,
    answer: httpx.Response | Handler,
    *,
    key: str | None = "sk-test-0123456789abcdefWXYZ",
    base_url: str | None = None,
) -> AsyncIterator[Recorded]:
    """``name`` built by ``make_provider`` whose every request gets ``answer``."""
    recorded: Recorded

    async def handle(request: httpx.Request) -> httpx.Response:
        recorded.requests.append(request)
        if isinstance(answer, httpx.Response):
            return answer
        result = answer(request)
        return result if isinstance(result, httpx.Response) else await result

    provider = make_provider(
        name, key=key, base_url=base_url, transport=httpx.MockTransport(handle)
    )
    recorded = Recorded(provider)
    try:
        yield recorded
    finally:
        await provider.aclose()
