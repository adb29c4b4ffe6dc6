"""``--reasoning-effort`` reaches each provider as its own field, and the tokens a model spent
reasoning are read from each answer (a part of the output, priced as output)."""

from __future__ import annotations

from typing import Any

import pytest

from engine._results import Usage
from engine._tokens import request_framing
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider
from tests.providers.test_anthropic import MESSAGE
from tests.providers.test_gemini import ANSWER
from tests.providers.test_openai import COMPLETION

pytestmark = pytest.mark.anyio

ANSWERS: dict[str, dict[str, Any]] = {"openai": COMPLETION, "anthropic": MESSAGE, "gemini": ANSWER}


def sent(provider: str, body: dict[str, Any]) -> Any:
    if provider == "openai":
        return body.get("reasoning_effort")
    if provider == "anthropic":
        return body.get("thinking")
    return body["generationConfig"].get("thinkingConfig")


@pytest.mark.parametrize(
    ("provider", "effort", "max_tokens", "field"),
    [
        ("openai", "high", 4000, "high"),
        ("openai", "low", 100, "low"),
        ("anthropic", "medium", 20000, {"type": "enabled", "budget_tokens": 4096}),
        ("anthropic", "high", 4000, {"type": "enabled", "budget_tokens": 2000}),
        ("anthropic", "low", 3000, {"type": "enabled", "budget_tokens": 1024}),
        ("gemini", "high", 50000, {"thinkingBudget": 16384}),
        ("gemini", "medium", 1000, {"thinkingBudget": 500}),
    ],
)
async def test_the_effort_is_sent_as_the_providers_own_field(
    provider: str, effort: str, max_tokens: int, field: Any
) -> None:
    request = CallRequest(model="m", prompt="Think", max_tokens=max_tokens, reasoning_effort=effort)
    async with mock_provider(provider, json_response(200, ANSWERS[provider])) as mock:
        await mock.provider.call(request)
    assert sent(provider, mock.body) == field
    async with mock_provider(provider, json_response(200, ANSWERS[provider])) as mock:
        await mock.provider.call(CallRequest(model="m", prompt="Think"))
    assert sent(provider, mock.body) is None  # nothing sent unless asked


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("effort", ["low", "medium", "high"])
async def test_the_bytes_the_effort_adds_to_a_body_are_in_what_the_cap_reserves(
    provider: str, effort: str
) -> None:
    bodies = []
    for asked in (None, effort):
        request = CallRequest(model="m", prompt="Think", max_tokens=100_000, reasoning_effort=asked)
        async with mock_provider(provider, json_response(200, ANSWERS[provider])) as mock:
            await mock.provider.call(request)
        bodies.append(len(mock.request.content))
    added = bodies[1] - bodies[0]
    assert 0 < added <= request_framing(None, {}, effort) - request_framing(None, {})


async def test_openai_reasoning_tokens_are_recorded() -> None:
    answer = {
        **COMPLETION,
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 300,
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
    }
    async with mock_provider("openai", json_response(200, answer)) as mock:
        result = await mock.provider.call(CallRequest(model="o4-mini", prompt="Think"))
    assert result.usage == Usage(30, 300, 0, reasoning_tokens=256)


@pytest.mark.parametrize("reasoning", [301, -5, "256", 1.5, None])
async def test_an_unbelievable_reasoning_count_is_left_out_not_the_usage(reasoning: Any) -> None:
    answer = {
        **COMPLETION,
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 300,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }
    async with mock_provider("openai", json_response(200, answer)) as mock:
        result = await mock.provider.call(CallRequest(model="o4-mini", prompt="Think"))
    assert result.usage == Usage(30, 300, 0) and result.usage.reasoning_tokens == 0
