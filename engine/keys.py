"""Where API keys come from, in order, and where ``batchdeck keys set`` puts one.

Order, first hit wins: the environment (each of the preset's variables, e.g.
``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``), a ``.env`` file in the working
directory (same variable names), the OS keyring (service ``batchdeck``, user =
provider name) when the ``keyring`` package is importable (the ``[keyring]``
extra), the key file ``keys.json`` in the config dir, and last the preset's
fallback variables (``openai-compatible`` takes ``OPENAI_API_KEY``, as the
OpenAI SDK would, only when none of its own sources has a key). A stored key goes
to the keyring when one works, else to the key file, written through a temp file created with mode
0600 (``os.open``, so the umask cannot widen it) and renamed into place.

``BATCHDECK_HOME`` isolates batchdeck: the config dir becomes
``$BATCHDECK_HOME/config`` (``engine._paths``) and the OS keyring is neither read nor written, so
a test or a portable install never touches the user's real keys.

Every key leaves this module as a ``Secret``; this module prints nothing (the
CLI and TUI render ``KeyStatus``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import orjson

from engine._atomic import write_atomic
from engine._dotenv import read_dotenv
from engine._errors import ConfigError
from engine._paths import config_dir
from engine._secrets import Secret
from engine.providers._presets import PRESETS, Preset

KEYRING_SERVICE = "batchdeck"
KEYS_FILE_NAME = "keys.json"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    provider: str
    secret: Secret
    source: str
    """``env OPENAI_API_KEY``, ``.env``, ``keyring`` or ``keys file <path>``."""
    fallback: bool = False
    """Another provider's key, taken because this one has none of its own (see above)."""


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: str
    present: bool
    required: bool
    """False for local servers, which run without a key unless started with one."""
    source: str | None
    masked: str | None


def keys_file() -> Path:
    return config_dir() / KEYS_FILE_NAME


def resolve_key(provider: str) -> ResolvedKey | None:
    """The key for ``provider`` from the first source that has one, or None."""
    preset = _preset(provider)
    return (
        _from_env(provider, preset.key_env)
        or _from_stores(provider)
        or _fallback(_from_env(provider, preset.fallback_key_env))
    )


def _fallback(found: ResolvedKey | None) -> ResolvedKey | None:
    return None if found is None else replace(found, fallback=True)


def _from_env(provider: str, variables: tuple[str, ...]) -> ResolvedKey | None:
    """The first of ``variables`` set in the environment, else in ``./.env``."""
    for variable in variables:
        value = os.environ.get(variable, "").strip()
        if value:
            return ResolvedKey(provider, Secret(value), f"env {variable}")
    if variables:
        dotenv = read_dotenv(Path.cwd() / ".env")
        for variable in variables:
            value = dotenv.get(variable, "").strip()
            if value:
                return ResolvedKey(provider, Secret(value), ".env")
    return None


def _from_stores(provider: str) -> ResolvedKey | None:
    """The key ``batchdeck keys set`` stored: in the OS keyring, else the key file."""
    from_keyring = _keyring_get(provider)
    if from_keyring:
        return ResolvedKey(provider, Secret(from_keyring), "keyring")
    path = keys_file()
    stored = _read_keys_file(path).get(provider, "").strip()
    if stored:
        return ResolvedKey(provider, Secret(stored), f"keys file {path}")
    return None


def key_status() -> list[KeyStatus]:
    """Every provider, whether it has a key, where from, and the key masked."""
    statuses = []
    for name, preset in PRESETS.items():
        found = resolve_key(name)
        statuses.append(
            KeyStatus(
                provider=name,
                present=found is not None,
                required=preset.key_required,
                source=found.source if found else None,
                masked=found.secret.masked if found else None,
            )
        )
    return statuses


def store_key(provider: str, value: str) -> str:
    """Keep ``value`` as ``provider``'s key; returns where: ``keyring`` or ``keys file <path>``."""
    _preset(provider)
    value = value.strip()
    if not value:
        raise ConfigError("an empty key cannot be stored")
    Secret(value)  # registered for redaction from here on
    if _keyring_set(provider, value):
        return "keyring"
    path = keys_file()
    stored = _read_keys_file(path)
    stored[provider] = value
    _write_private(path, orjson.dumps(stored, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return f"keys file {path}"


def _preset(provider: str) -> Preset:
    try:
        return PRESETS[provider]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ConfigError(f"unknown provider {provider!r} (known: {known})") from None


def _keyring() -> tuple[ModuleType, type[Exception]] | None:
    if os.environ.get("BATCHDECK_HOME"):
        return None
    try:
        module = importlib.import_module("keyring")
        errors = importlib.import_module("keyring.errors")
    except ImportError:
        return None
    return module, errors.KeyringError


def _keyring_get(provider: str) -> str | None:
    found = _keyring()
    if found is None:
        return None
    keyring, keyring_error = found
    try:
        value = keyring.get_password(KEYRING_SERVICE, provider)
    except (keyring_error, OSError, RuntimeError):
        return None  # no usable backend: fall through to the key file
    return value.strip() if isinstance(value, str) else None


def _keyring_set(provider: str, value: str) -> bool:
    found = _keyring()
    if found is None:
        return False
    keyring, keyring_error = found
    try:
        keyring.set_password(KEYRING_SERVICE, provider, value)
    except (keyring_error, OSError, RuntimeError):
        return False  # e.g. the "fail" backend of a headless Linux box
    return True


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"keys file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"keys file {path} must map provider names to keys")
    return data


def _write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    write_atomic(path, content, mode=_FILE_MODE)
