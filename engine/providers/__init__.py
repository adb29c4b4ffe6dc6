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

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from engine import keys
from engine._errors import ConfigError
from engine._secrets import Secret
from engine.providers._base import CallRequest, CallResult, Identifies, Provider, RateLimitInfo
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
from engine.providers._http import HttpProvider, check_key_transport, is_loopback
from engine.providers._presets import (
    DEFAULT_TIMEOUT_S,
    LOCAL_TIMEOUT_S,
    PRESETS,
    Preset,
    ProviderConfig,
)
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
    "base_url_for",
    "check_base_url",
    "default_timeout",
    "is_free",
    "is_local",
    "list_models",
    "make_provider",
    "parse_model_spec",
    "provider_names",
    "request_identities",
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

    ``base_url`` overrides the preset's (``openai-compatible`` needs one; see
    ``base_url_for``). ``key=None`` resolves the key (``engine.keys.resolve_key``);
    a provider whose preset requires a key and has none raises ``ConfigError``
    here, before any call (not when the base URL is on this machine: a local
    server needs no key), as does a key that would go over plain http to a host that is not
    loopback unless ``allow_insecure_http``. ``transport`` is for tests. How many
    calls are in flight is the run's workers' business alone: the provider's pool
    never caps it.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown provider {name!r} (providers: {', '.join(_FACTORIES)})")
    preset = PRESETS.get(name)
    url = base_url_for(name, base_url)
    if preset is not None:
        if url is None:
            raise ConfigError(
                f"{name} needs a base URL: --model {name}:MODEL=http://host:port/v1, "
                f"--base-url, or {preset.base_url_env}"
            )
        host = check_base_url(url)
        if key is None:
            found = keys.resolve_key(name)
            if found is not None and (not found.fallback or _safe(url, allow_insecure_http)):
                key = found.secret
        if key is None and preset.key_required and not is_loopback(host):
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


async def list_models(name: str, base_url: str | None = None) -> list[str]:
    """The models the server of provider ``name`` at ``base_url`` lists (``GET /v1/models``):
    what a local server has loaded. ``ProviderError`` when it cannot be asked or does not
    answer, ``ConfigError`` for a provider that lists nothing or a URL that cannot work."""
    provider = make_provider(name, base_url=base_url)
    try:
        if not isinstance(provider, HttpProvider) or provider.models_path is None:
            raise ConfigError(f"{name} has no server to ask for its models")
        return await provider.list_models()
    finally:
        await provider.aclose()


def base_url_for(name: str, given: str | None = None) -> str | None:
    """Where provider ``name``'s calls go: ``given`` (a model's own URL, else the run's
    ``--base-url``), else the variable its SDK reads (``OPENAI_BASE_URL``), else the preset's."""
    preset = PRESETS.get(name)
    if given or preset is None:
        return given or None
    from_env = os.environ.get(preset.base_url_env, "").strip() if preset.base_url_env else ""
    return from_env or preset.base_url


def is_free(name: str) -> bool:
    """Provider ``name``'s preset prices nothing (a local server): its calls cost $0."""
    preset = PRESETS.get(name)
    return preset is not None and preset.pricing == "free"


def is_local(name: str, base_url: str | None = None) -> bool:
    """A model of provider ``name`` at ``base_url`` runs on a local server: a local preset
    (Ollama, llama.cpp, vLLM, LM Studio), or any base URL on this machine."""
    preset = PRESETS.get(name)
    if preset is not None and preset.local:
        return True
    url = base_url_for(name, base_url)
    try:
        return url is not None and is_loopback(httpx.URL(url).host)
    except httpx.InvalidURL:
        return False


def default_timeout(name: str, base_url: str | None = None) -> float:
    """The per-call timeout of a model of provider ``name`` when ``--timeout`` is not given:
    long on a local server (``is_local``), where calls queue behind a few slots."""
    return LOCAL_TIMEOUT_S if is_local(name, base_url) else DEFAULT_TIMEOUT_S


def _safe(url: str, allow_insecure_http: bool) -> bool:
    """A key may go to ``url``. A key borrowed from another provider (``OPENAI_API_KEY`` for
    ``openai-compatible``) is simply not sent where it may not go: the server that the user
    named most likely needs none, and refusing the run over a key it never asked for would
    break a plain-http server on the user's network."""
    try:
        check_key_transport(httpx.URL(url), has_key=True, allow_insecure_http=allow_insecure_http)
    except ConfigError:
        return False
    return True


def check_base_url(url: str) -> str:
    """The URL's host; ConfigError (one line naming the URL) if it is not an http(s) URL
    with one."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"base URL {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"base URL {url!r} must be http(s)://host[:port][/path]")
    return parsed.host


def request_identities(
    base_urls: Mapping[str, str | None],
) -> dict[str, Callable[[CallRequest], bytes]]:
    """How each model's requests are told apart by the response cache (``request_identity``),
    for the models whose answers it keeps (model -> its run's base URL, as
    ``RunConfig.base_url_of`` says), built with no key and a transport that cannot
    send: for the estimate, which must find cached items without a key or a call."""
    found: dict[str, Callable[[CallRequest], bytes]] = {}
    for model, given in base_urls.items():
        name = model.partition(":")[0]
        preset, factory = PRESETS.get(name), _FACTORIES.get(name)
        url = base_url_for(name, given)
        if preset is None or factory is None or url is None:
            continue
        config = ProviderConfig(
            name=name,
            base_url=url,
            key=None,
            preset=preset,
            allow_insecure_http=True,  # nothing is ever sent
            transport=httpx.AsyncBaseTransport(),
        )
        provider = factory(config)
        if isinstance(provider, Identifies):
            found[model] = provider.request_identity
    return found


def _missing_key(preset: Preset) -> str:
    variables = " or ".join(preset.key_env)
    return (
        f"no API key for {preset.name}: set {variables}, add it to .env,"
        f" or run `batchdeck keys set {preset.name}`"
    )
