"""Fixtures every test shares: the anyio backend, and a batchdeck home in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import SETTINGS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def batchdeck_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every run dir, config file and key store at tmp_path, never at the user's own,
    with no ``BATCHDECK_*`` setting from the environment."""
    home = tmp_path / "batchdeck-home"
    monkeypatch.setenv("BATCHDECK_HOME", str(home))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for setting in SETTINGS:  # a developer's BATCHDECK_WORKERS must not change a test
        monkeypatch.delenv(setting.env_var, raising=False)
    return home
