"""Usage an answer reports is believed only when it is plain, sane whole numbers.

Each wire's answer is sent with no usage, and with counts that are negative,
10^30, NaN, strings or floats (written by ``json``, as a careless server would):
every one comes back ``unknown`` (the engine then charges the reservation).
NaN and infinity are not JSON, so such a body is an error, billed as unknown
too, as is any 2xx body that cannot be read.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from engine._errors import ProviderError
from engine._results import Usage
from engine.providers import CallRequest
from tests._mock_provider import mock_provider

pytestmark = pytest.mark.anyio

REQUEST = CallRequest(model="m", prompt="Say hello", max_tokens=100)

WIRES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "openai": (
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                      "finish_reason": "stop"}]},
        "usage",
        {"prompt_tokens": 19, "completion_tokens": 10},
    ),
    "anthropic": (
        {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
         "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"},
        "usage",
        {"input_tokens": 19, "output_tokens": 10},
    ),
    "gemini": (
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]},
                         "finishReason": "STOP"}]},
        "usageMetadata",
        {"promptTokenCount": 19, "candidatesTokenCount": 10},
    ),
}  # fmt: skip

LIES: dict[str, Any] = {
    "negative": -5,
    "huge": 10**30,
    "nan": math.nan,
    "infinite": math.inf,
    "string": "10",
    "float": 10.5,
    "bool": True,
    "null": None,
}


LEFT_OUT_WHEN_ZERO = {"candidatesTokenCount"}
"""Gemini leaves out a count that is zero: missing (or null) means 0, not a lie."""


def answer(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(body).encode())


@pytest.mark.parametrize("wire", WIRES)
async def test_honest_usage_is_read(wire: str) -> None:
    body, field, usage = WIRES[wire]
    async with mock_provider(wire, answer({**body, field: usage})) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.usage == Usage(19, 10)


@pytest.mark.parametrize("wire", WIRES)
async def test_an_answer_without_usage_is_unknown(wire: str) -> None:
    body, _, _ = WIRES[wire]
    async with mock_provider(wire, answer(body)) as mock:
        result = await mock.provider.call(REQUEST)
    assert result.usage.unknown


@pytest.mark.parametrize("lie", LIES)
@pytest.mark.parametrize("wire", WIRES)
async def test_unreadable_usage_is_unknown_and_never_raises(wire: str, lie: str) -> None:
    body, field, usage = WIRES[wire]
    for name in usage:  # each count in turn lies; the others are honest
        if lie == "null" and name in LEFT_OUT_WHEN_ZERO:
            continue
        lying = {**usage, name: LIES[lie]}
        async with mock_provider(wire, answer({**body, field: lying})) as mock:
            try:
                billed: Usage | None = (await mock.provider.call(REQUEST)).usage
            except ProviderError as exc:  # NaN and infinity are not JSON
                billed = exc.usage
        assert billed is not None and billed.unknown, (name, lie)


@pytest.mark.parametrize("wire", WIRES)
async def test_a_2xx_body_that_is_not_json_is_billed_as_unknown(wire: str) -> None:
    async with mock_provider(wire, httpx.Response(200, content=b'{"usage": NaN, ')) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(REQUEST)
    assert caught.value.usage is not None and caught.value.usage.unknown
