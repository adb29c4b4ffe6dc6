"""The providers batchdeck can call, and the one function that builds any of them.

A model is named ``provider:model`` (``openai:gpt-4o-mini``,
``ollama:llama3.2:3b``: the model keeps every colon after the first). A run
builds one provider per provider name, not per model, because the provider
owns the connection pool and every model of one provider shares it.

``_FACTORIES`` maps a provider name to a callable taking a ``ProviderConfig``;
every preset gets its wire's class, and a provider with no HTTP preset (the
engine's ``simulate``) is one more entry. ``engine.keys`` is imported as a
module because it imports the presets from this package in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from engine import keys
from engine._errors import ConfigError
from engine._secrets import Secret
from engine.providers._base import CallRequest, CallResult, Provider, RateLimitInfo
from engine.providers._batch import (
    TERMINAL_STATES,
    BatchApi,
    BatchLimits,
    BatchRequest,
    JobState,
    JobStatus,
    Outcome,
    RequestLookup,
)
from engine.providers._presets import PRESETS, Preset, ProviderConfig
from engine.providers.anthropic import AnthropicProvider
from engine.providers.gemini import GeminiProvider
from engine.providers.openai import OpenAIProvider

__all__ = [
    "PRESETS",
    "TERMINAL_STATES",
    "BatchApi",
    "BatchLimits",
    "BatchRequest",
    "CallRequest",
    "CallResult",
    "JobState",
    "JobStatus",
    "ModelSpec",
    "Outcome",
    "Preset",
    "Provider",
    "ProviderConfig",
    "ProviderFactory",
    "RateLimitInfo",
    "RequestLookup",
    "make_provider",
    "parse_model_spec",
    "provider_names",
]

ProviderFactory = Callable[[ProviderConfig], Provider]

_WIRES: dict[str, ProviderFactory] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}
_FACTORIES: dict[str, ProviderFactory] = {
    name: _WIRES[preset.wire] for name, preset in PRESETS.items()
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    provider: str
    model: str

    @property
    def label(self) -> str:
        """``provider:model``, the name results and prices use."""
        return f"{self.provider}:{self.model}"


def provider_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def parse_model_spec(text: str) -> ModelSpec:
    """``openai:gpt-4o-mini`` -> ``ModelSpec("openai", "gpt-4o-mini")``; ConfigError if unknown."""
    provider, colon, model = text.strip().partition(":")
    if not colon or not provider or not model:
        raise ConfigError(
            f"model {text!r} must be PROVIDER:MODEL, e.g. openai:gpt-4o-mini"
            f" (providers: {', '.join(_FACTORIES)})"
        )
    if provider not in _FACTORIES:
        raise ConfigError(
            f"unknown provider {provider!r} in {text!r} (providers: {', '.join(_FACTORIES)})"
        )
    return ModelSpec(provider, model)


def make_provider(
    name: str,
    *,
    base_url: str | None = None,
    key: Secret | str | None = None,
    allow_insecure_http: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Provider:
    """Build provider ``name`` for one run; close it with ``await provider.aclose()``.

    ``base_url`` overrides the preset's (``openai-compatible`` needs one).
    ``key=None`` resolves the key (``engine.keys.resolve_key``); a provider
    whose preset requires a key and has none raises ``ConfigError`` here, before
    any call, as does a key that would go over plain http to a host that is not
    loopback unless ``allow_insecure_http``. ``transport`` is for tests. How many
    calls are in flight is the run's workers' business alone: the provider's pool
    never caps it.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown provider {name!r} (providers: {', '.join(_FACTORIES)})")
    preset = PRESETS.get(name)
    url = base_url or (preset.base_url if preset else None)
    if preset is not None:
        if url is None:
            raise ConfigError(f"{name} needs a base URL (--base-url http://host:port/v1)")
        _check_url(url)
        if key is None:
            found = keys.resolve_key(name)
            key = found.secret if found else None
        if key is None and preset.key_required:
            raise ConfigError(_missing_key(preset))
    secret = Secret(key) if isinstance(key, str) else key
    return factory(
        ProviderConfig(
            name=name,
            base_url=url,
            key=secret,
            preset=preset,
            allow_insecure_http=allow_insecure_http,
            transport=transport,
        )
    )


def _check_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"base URL {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"base URL {url!r} must be http(s)://host[:port][/path]")


def _missing_key(preset: Preset) -> str:
    variables = " or ".join(preset.key_env)
    return (
        f"no API key for {preset.name}: set {variables}, add it to .env,"
        f" or run `batchdeck keys set {preset.name}`"
    )
