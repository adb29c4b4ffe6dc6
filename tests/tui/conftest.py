"""Pilot fixtures: no blinking cursors (snapshots must not depend on timing)."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from tests.tui._flows import Notices


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cursors start steady; BATCHDECK_HOME already points at tmp_path (tests/conftest.py)."""
    for widget in (Input, TextArea):
        monkeypatch.setattr(widget.cursor_blink, "_default", False)


@pytest.fixture
def notices(monkeypatch: pytest.MonkeyPatch) -> Notices:
    return Notices(monkeypatch)
