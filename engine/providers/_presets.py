"""Where each provider lives, how it wants its key, and whether its calls cost money.

Three wire formats cover every provider batchdeck talks to: OpenAI's Chat
Completions (which Ollama, llama.cpp, vLLM, LM Studio, OpenRouter, Groq,
Together and DeepSeek all speak), Anthropic's Messages and Gemini's
generateContent. A preset is therefore data, not code: a base URL, the
environment variables that may hold its key, whether a key is required, and
what the engine can know about cost. Adding an OpenAI-compatible host is one
entry in ``PRESETS``.

``ProviderConfig`` is one provider set up for one run, the single argument
every provider class (and the lead's simulate provider) is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from engine._secrets import Secret

Wire = Literal["openai", "anthropic", "gemini"]
Pricing = Literal["table", "free", "unknown"]
DEFAULT_TIMEOUT_S = 60.0
"""The per-call timeout when ``--timeout`` is not given, on a hosted API."""
LOCAL_TIMEOUT_S = 600.0
"""The same on a local server: one CPU-bound server answers a few slots at a time, so a
call queued behind them waits minutes for its answer, not seconds."""
"""``table``: look the model up in the price table; ``free``: a local server, cost 0;
``unknown``: nothing to price with (a money cap cannot be enforced)."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    wire: Wire
    base_url: str | None
    """None when the user must give one (``openai-compatible``)."""
    key_env: tuple[str, ...] = ()
    """Environment variables that may hold the key, in the order they are tried."""
    key_required: bool = False
    pricing: Pricing = "table"
    usage_known: bool = True
    """Whether responses report token usage (False: the engine has to estimate)."""
    max_tokens_field: str = "max_tokens"
    """OpenAI wire only: ``max_completion_tokens`` on OpenAI itself (its o-series
    and gpt-5 models refuse ``max_tokens``), ``max_tokens`` on compatible servers
    (and on OpenAI's preset pointed at another base URL, which is one of them)."""
    batch: bool = False
    """Whether the provider sells its calls through its wire's native batch API."""
    base_url_env: str | None = None
    """The variable the provider's own SDK reads its base URL from (``OPENAI_BASE_URL``),
    honoured the same way: over the preset's URL, under a model's or the run's own."""
    fallback_key_env: tuple[str, ...] = ()
    """Variables tried after every store of the provider's own key (``openai-compatible``
    falls back to ``OPENAI_API_KEY``, as the OpenAI SDK a user points at it would)."""
    local: bool = False
    """A server on the user's machine or network: free, no key, a long default timeout."""


def _local(name: str, base_url: str, *key_env: str) -> Preset:
    return Preset(name, "openai", base_url, key_env, pricing="free", local=True)


def _hosted(name: str, base_url: str, key_env: str) -> Preset:
    return Preset(name, "openai", base_url, (key_env,), key_required=True)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "openai",
            "openai",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            key_required=True,
            max_tokens_field="max_completion_tokens",
            batch=True,
            base_url_env="OPENAI_BASE_URL",
        ),
        Preset(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com",
            ("ANTHROPIC_API_KEY",),
            key_required=True,
            batch=True,
            base_url_env="ANTHROPIC_BASE_URL",
        ),
        Preset(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            key_required=True,
            batch=True,
        ),
        Preset(
            "openai-compatible",
            "openai",
            None,
            ("OPENAI_COMPATIBLE_API_KEY",),
            pricing="unknown",
            usage_known=False,
            base_url_env="OPENAI_BASE_URL",
            fallback_key_env=("OPENAI_API_KEY",),
        ),
        _local("ollama", "http://localhost:11434/v1"),
        _local("llamacpp", "http://localhost:8080/v1"),
        _local("vllm", "http://localhost:8000/v1", "VLLM_API_KEY"),
        _local("lmstudio", "http://localhost:1234/v1"),
        _hosted("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        _hosted("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        _hosted("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        _hosted("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    )
}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider for one run: everything a provider class is constructed from."""

    name: str
    base_url: str | None
    """The URL calls go to: the model's, the run's ``--base-url``, the SDK's variable, or
    the preset's."""
    key: Secret | None = None
    preset: Preset | None = None
    allow_insecure_http: bool = False
    """Send the key over plain http to a host that is not loopback (``--allow-insecure-http``)."""
    transport: httpx.AsyncBaseTransport | None = None
    """Tests inject ``httpx.MockTransport`` here; None means the pooled aiohttp transport."""
