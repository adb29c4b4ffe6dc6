"""``--reasoning-effort``: one word, each provider's own field for it.

OpenAI takes the word itself (``reasoning_effort``); Anthropic and Gemini take a
budget of thinking tokens (``thinking.budget_tokens``, ``thinkingConfig.
thinkingBudget``), so the word maps to a budget here, once for both. Every
provider counts those tokens within the request's output limit, so the money
cap's reservation (``max_tokens`` of output) already covers them; the fields
themselves are input bytes the reservation adds (``framing_bytes``), as for any
``--param``. A budget never takes the whole limit: it is at most half of it, so
an answer keeps room, and Anthropic's floor of 1,024 thinking tokens means its
limit must be above 2,048 (``min_max_tokens``), checked before a run starts.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson

Effort = Literal["low", "medium", "high"]

THINKING_BUDGETS: dict[str, int] = {"low": 1024, "medium": 4096, "high": 16384}
"""Thinking tokens per effort, for the providers that take a budget."""
ANTHROPIC_MIN_BUDGET = 1024
"""Anthropic refuses ``budget_tokens`` below this."""
ANSWER_ROOM = 2
"""A budget is at most 1/ANSWER_ROOM of the output limit: the answer needs the rest."""


def thinking_budget(effort: str, max_tokens: int) -> int:
    return min(THINKING_BUDGETS[effort], max_tokens // ANSWER_ROOM)


def openai_fields(effort: str) -> dict[str, Any]:
    return {"reasoning_effort": effort}


def anthropic_fields(effort: str, max_tokens: int) -> dict[str, Any]:
    budget = max(thinking_budget(effort, max_tokens), ANTHROPIC_MIN_BUDGET)
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}


def gemini_thinking(effort: str, max_tokens: int) -> dict[str, Any]:
    """Gemini's ``generationConfig.thinkingConfig``."""
    return {"thinkingBudget": thinking_budget(effort, max_tokens)}


def framing_bytes(effort: str | None) -> int:
    """Bytes the effort adds to a request body, at most (the largest of the providers')."""
    if effort is None:
        return 0
    top = max(THINKING_BUDGETS.values())
    shapes = (
        openai_fields(effort),
        anthropic_fields(effort, top * ANSWER_ROOM),
        {"thinkingConfig": gemini_thinking(effort, top * ANSWER_ROOM)},
    )
    return max(len(orjson.dumps(shape)) for shape in shapes)


def min_max_tokens(provider: str) -> int:
    """The smallest ``--max-tokens`` that leaves a reasoning answer room on ``provider``
    (the thinking floor plus as much for the answer); 1 where there is no floor."""
    return ANTHROPIC_MIN_BUDGET * ANSWER_ROOM + 1 if provider == "anthropic" else 1


_REASONING_MODELS = re.compile(
    r"(^|/)(o\d|gpt-5|gemini-(2\.5|[3-9])|deepseek-reasoner|qwq)|thinking|reason", re.IGNORECASE
)
"""Models that reason before they answer whether asked to or not (OpenAI's o-series and
GPT-5, Gemini 2.5 and later, DeepSeek's reasoner, QwQ, and names that say so)."""
DEFAULT_EFFORT = "medium"


def room_warning(model: str, effort: str | None, max_tokens: int) -> str | None:
    """A warning when ``max_tokens`` may be used up by reasoning before any answer: a
    model that reasons (asked to, or by its nature) at ``effort`` thinks about its budget."""
    bare = model.partition(":")[2]
    if effort is None and not _REASONING_MODELS.search(bare):
        return None
    thinking = THINKING_BUDGETS[effort or DEFAULT_EFFORT]
    if max_tokens > thinking:
        return None
    return (
        f"--max-tokens {max_tokens} may leave {model} no room to answer: it reasons first, "
        f"within the same limit (~{thinking:,} tokens at {effort or DEFAULT_EFFORT} effort), "
        f"and an answer cut off there ends truncated; give --max-tokens above {thinking:,}"
    )
