"""``--reasoning-effort`` reaches the wire: the run's every call carries the provider's field."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine._reasoning import openai_fields
from tests._mock_provider import json_response, mock_provider
from tests.engine.scripted import items, make_run

pytestmark = pytest.mark.anyio

MODEL = "openai:gpt-5-mini"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-5-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
}


async def test_every_call_carries_the_runs_reasoning_effort(tmp_path: Path) -> None:
    run = make_run(
        tmp_path, items(3), models=(MODEL,), reasoning_effort="high", max_tokens=4096, cache=False
    )
    async with mock_provider("openai", json_response(200, ANSWER)) as mock:
        finished = await run.execute([], providers={MODEL: mock.provider})
    assert finished.ok == 3
    bodies = [orjson.loads(request.content) for request in mock.requests]
    assert len(bodies) == 3
    assert all(openai_fields("high").items() <= body.items() for body in bodies)
