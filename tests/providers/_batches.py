"""What the batch adapters' tests share: a routed mock, the adapter, JSONL, online bodies."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx
import orjson

from engine import ProviderError
from engine.providers import BatchApi, BatchRequest
from tests._mock_provider import Recorded, json_response, mock_provider

Route = httpx.Response | Callable[[httpx.Request], httpx.Response]


def routes(table: dict[str, Route]) -> Callable[[httpx.Request], httpx.Response]:
    """Answers ``METHOD /path`` from ``table``; a 404 for anything else."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = table.get(f"{request.method} {request.url.path}")
        if answer is None:
            return json_response(404, {"error": {"message": f"no route {request.url.path}"}})
        return answer if isinstance(answer, httpx.Response) else answer(request)

    return handle


def api_of(mock: Recorded) -> BatchApi:
    api = mock.provider.batch_api()
    assert api is not None
    return api


def jsonl(*records: Any) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


async def online_bodies(
    provider: str, requests: list[BatchRequest], answer: dict[str, Any]
) -> list[dict[str, Any]]:
    """The JSON body each request's online call sends."""
    async with mock_provider(provider, json_response(200, answer)) as mock:
        for request in requests:
            with suppress(ProviderError):  # the body sent is what counts, not the answer
                await mock.provider.call(request.request)
        return [orjson.loads(r.content) for r in mock.requests]
