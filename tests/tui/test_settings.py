"""Settings load tolerantly, save atomically, and live under BATCHDECK_HOME in tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.settings import (
    MAX_RECENT_FILES,
    Settings,
    load_settings,
    save_settings,
    settings_path,
)


def test_the_file_lives_under_batchdeck_home(batchdeck_home: Path) -> None:
    assert settings_path() == batchdeck_home / "config" / "settings.json"


def test_a_missing_file_gives_defaults_without_a_warning() -> None:
    loaded = load_settings()
    assert loaded.settings == Settings()
    assert loaded.warning is None


def test_settings_round_trip() -> None:
    settings = Settings(
        theme="batchdeck-light",
        caps={"max_cost": 5.0, "workers": 16, "temperature": 0.2},
        models=("openai:gpt-4o-mini", "simulate"),
    ).with_recent_file("/data/tickets.jsonl")
    save_settings(settings)
    loaded = load_settings()
    assert loaded.settings == settings
    assert loaded.warning is None
    assert loaded.settings.last_input_dir == "/data"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"{not json", "file"),
        (b'{"caps": {"workers": -3}}', "caps.workers"),
        (b"\xff\xfe", "file"),
    ],
)
def test_a_corrupt_file_gives_defaults_and_a_warning(content: bytes, where: str) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    loaded = load_settings()
    assert loaded.settings == Settings()
    assert loaded.warning is not None
    assert str(path) in loaded.warning and where in loaded.warning


def test_unknown_keys_from_a_newer_version_are_ignored() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"theme": "batchdeck-light", "future": 1}')
    assert load_settings().settings.theme == "batchdeck-light"


def test_recent_files_are_unique_newest_first_and_capped() -> None:
    settings = Settings()
    for n in range(MAX_RECENT_FILES + 3):
        settings = settings.with_recent_file(f"/data/file-{n}.csv")
    settings = settings.with_recent_file("/data/file-5.csv")
    assert len(settings.recent_files) == MAX_RECENT_FILES
    assert settings.recent_files[0] == "/data/file-5.csv"
    assert settings.recent_files.count("/data/file-5.csv") == 1
    assert Settings(recent_files=("a", "a", "b")).recent_files == ("a", "b")


def test_saving_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "settings.json"
    save_settings(Settings(theme="one"), path)
    save_settings(Settings(theme="two"), path)
    assert load_settings(path).settings.theme == "two"
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    save_settings(Settings(theme="old"), path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine._atomic.os.replace", broken_replace)
    with pytest.raises(OSError):
        save_settings(Settings(theme="new"), path)
    assert load_settings(path).settings.theme == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
