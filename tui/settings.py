"""What the app remembers between sessions, as a typed JSON file in the user's config dir.

The file lives in ``engine.config_dir()``: platformdirs' user config
dir, or ``$BATCHDECK_HOME/config`` when that is set (tests set it, so they never
touch the user's own file). Loading never fails: a missing file gives defaults, and
a file that does not parse or validate gives defaults plus a warning the app
shows once, because a settings file is not worth refusing to start over.
Saving writes a temp file next to the real one and renames it over, so a
crash mid-save leaves the old file or the new one, never half of each.

The remembered caps are the settings the last run started with, by setting
name (``workers``, ``retries``): their names, types and bounds are the
engine's declaration (``engine.SettingValues``), not repeated here, so a new
setting is remembered with no change to this file. One left unset, and models
left empty, mean "the engine's default".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from engine import SettingValues, config_dir, strip_url_credentials, write_atomic
from themes import DEFAULT_THEME

SETTINGS_FILE: Final = "settings.json"
MAX_RECENT_FILES: Final = 10


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    last_input_dir: str | None = None
    recent_files: tuple[str, ...] = ()
    """Most recent first, at most ``MAX_RECENT_FILES``."""
    theme: str = DEFAULT_THEME
    caps: SettingValues = Field(default_factory=dict)
    """Default settings offered when setting up a run: the last run's."""
    models: tuple[str, ...] = ()
    """Default ``provider:model`` choices for a new run."""
    added_models: dict[str, str] = Field(default_factory=dict)
    """Models added by hand in Setup (a local server's, any provider's), offered again:
    ``provider:model`` -> its base URL, "" for the provider's own. Never a key: a URL that
    carried one is kept without it."""

    pipeline_file: str | None = None
    """The pipeline file the last run's steps came from, offered in Setup's Steps."""

    @field_serializer("added_models")
    def _no_credentials(self, added: dict[str, str]) -> dict[str, str]:
        return {spec: strip_url_credentials(url) for spec, url in added.items()}

    @field_validator("recent_files")
    @classmethod
    def _dedupe_recent(cls, files: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(files))[:MAX_RECENT_FILES]

    def with_recent_file(self, path: str) -> Settings:
        """``path`` first among the recent files, and its directory as the last input dir;
        kept absolute, so they still point at the file when batchdeck starts elsewhere."""
        full = str(Path(path).resolve()) if path != "-" else path
        recent = tuple(dict.fromkeys((full, *self.recent_files)))[:MAX_RECENT_FILES]
        return self.model_copy(
            update={"recent_files": recent, "last_input_dir": str(Path(full).parent)}
        )


@dataclass(frozen=True, slots=True)
class LoadedSettings:
    settings: Settings
    warning: str | None = None
    """Why the file was ignored, when it could not be used."""


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> LoadedSettings:
    """The saved settings, or defaults (with a warning if the file was unusable)."""
    path = settings_path() if path is None else path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LoadedSettings(Settings())
    except OSError as exc:
        return LoadedSettings(Settings(), f"Could not read {path}: {exc.strerror}; using defaults.")
    try:
        return LoadedSettings(Settings.model_validate_json(data))
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "file"
        return LoadedSettings(
            Settings(), f"Ignored {path} ({where}: {problem['msg']}); using defaults."
        )


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Replace the settings file atomically; raises ``OSError`` if it cannot be written."""
    path = settings_path() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, settings.model_dump_json(indent=2).encode())
