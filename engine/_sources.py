"""Where a new run's settings come from besides flags: ``config.toml`` and ``BATCHDECK_*``.

The precedence is flag > environment > file > the model's default, one layer
over the next, for exactly the settings ``SETTINGS`` declares: the file's keys
and the variables' names are derived from it (``workers`` and
``BATCHDECK_WORKERS``), so a new setting is read here with no change to this
module. Each layer is checked value by value as it is read, so a bad one is
one line naming the file or the variable and the setting, not a validation
error about a merged dict the user never wrote. An unknown key in the file is an
error too (a typo would otherwise be silently ignored); an unknown
``BATCHDECK_*`` variable is not, since other things share that prefix
(``BATCHDECK_HOME``). An empty variable counts as unset.

Plain ``tomllib`` and the model do this; pydantic-settings would add a
dependency to learn its own source and nesting conventions for 17 flat values.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine._config import SETTINGS, SETTINGS_BY_NAME
from engine._errors import ConfigError
from engine._paths import config_dir

CONFIG_FILE = "config.toml"


def config_file() -> Path:
    return config_dir() / CONFIG_FILE


ENDPOINTS = "endpoints"
"""``config.toml``'s table of named base URLs: ``[endpoints]`` then ``gpu = "http://..."``,
used as ``--model vllm:qwen=gpu``."""


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def file_endpoints(path: Path | None = None) -> dict[str, str]:
    """The named base URLs of ``config.toml``'s ``[endpoints]`` table."""
    path = config_file() if path is None else path
    table = _read(path).get(ENDPOINTS, {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f'{path}: [{ENDPOINTS}] must map names to URLs (gpu = "http://...")')
    return table


def file_settings(path: Path | None = None) -> dict[str, Any]:
    """The settings ``config.toml`` gives (none when there is no file)."""
    path = config_file() if path is None else path
    values: dict[str, Any] = {}
    for key, raw in _read(path).items():
        if key == ENDPOINTS:
            continue
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            known = ", ".join(s.name for s in SETTINGS)
            raise ConfigError(f"{path}: {key}: not a setting (settings: {known})", field=key)
        values[key] = setting.parse(raw, f"{path}: ")
    return values


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings ``BATCHDECK_*`` variables give."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env_var, "").strip()
        if raw:
            values[setting.name] = setting.parse(raw, f"{setting.env_var}={raw!r}: ")
    return values


def default_settings() -> dict[str, Any]:
    """A new run's settings before its flags: the environment over ``config.toml``."""
    return {**file_settings(), **env_settings()}
