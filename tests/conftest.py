"""Fixtures every test shares: the anyio backend, and a batchdeck home in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def batchdeck_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every run dir, config file and key store at tmp_path, never at the user's own."""
    home = tmp_path / "batchdeck-home"
    monkeypatch.setenv("BATCHDECK_HOME", str(home))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home
